/**
 * `etcdctl completion bash|zsh|fish|powershell`: a completion script for the shell. The scripts
 * are tsetcdctl's own: they complete command names and flags from the command tree, which they
 * carry as a table (etcdctl's scripts ask the program itself instead).
 */
import type { CommandSpec } from './command-tree.js';
import type { CommandContext } from './context.js';
import type { FlagSpec } from './flags.js';

/** For each command path ('' for the root): the words that may follow it. */
function completionTable(root: CommandSpec, globals: readonly FlagSpec[]): Map<string, string[]> {
  const table = new Map<string, string[]>();
  const flagWords = (specs: readonly FlagSpec[]): string[] =>
    specs.filter((spec) => spec.hidden !== true).map((spec) => `--${spec.name}`);
  const walk = (command: CommandSpec, path: string, inherited: readonly FlagSpec[]): void => {
    const children = (command.children ?? []).map((child) => child.name);
    const persistent = [...inherited, ...(command.persistentFlags ?? [])];
    table.set(path, [...children, ...flagWords([...command.flags, ...persistent]), '--help']);
    for (const child of command.children ?? [])
      walk(child, path === '' ? child.name : `${path} ${child.name}`, persistent);
  };
  walk({ ...root, persistentFlags: [] }, '', globals);
  return table;
}

function bashScript(table: Map<string, string[]>): string {
  const cases = [...table].map(([path, words]) => `    "${path}") words="${words.join(' ')}" ;;`).join('\n');
  return `# bash completion for etcdctl (from tsetcdctl)
_etcdctl_complete() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" word words=""
  for word in "\${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
    case "$word" in
      -*) ;;
      *) path="\${path:+$path }$word" ;;
    esac
  done
  case "$path" in
${cases}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _etcdctl_complete etcdctl
`;
}

function fishScript(table: Map<string, string[]>): string {
  const lines = [
    '# fish completion for etcdctl (from tsetcdctl)',
    'function __etcdctl_path',
    "  commandline -opc | string match -v -- '-*' | tail -n +2 | string join ' '",
    'end',
  ];
  for (const [path, words] of table) {
    const names = words.filter((word) => !word.startsWith('-'));
    const flags = words.filter((word) => word.startsWith('--')).map((word) => `-l ${word.slice(2)}`);
    const when = `-n 'test "(__etcdctl_path)" = "${path}"'`;
    if (names.length > 0) lines.push(`complete -c etcdctl -f ${when} -a '${names.join(' ')}'`);
    for (const flag of flags) lines.push(`complete -c etcdctl ${when} ${flag}`);
  }
  return `${lines.join('\n')}\n`;
}

function powershellScript(table: Map<string, string[]>): string {
  const entries = [...table]
    .map(([path, words]) => `  '${path}' = @(${words.map((word) => `'${word}'`).join(', ')})`)
    .join('\n');
  return `# powershell completion for etcdctl (from tsetcdctl)
$etcdctlWords = @{
${entries}
}
Register-ArgumentCompleter -Native -CommandName 'etcdctl' -ScriptBlock {
  param($wordToComplete, $commandAst, $cursorPosition)
  $path = ($commandAst.CommandElements | Select-Object -Skip 1 | ForEach-Object { $_.ToString() } |
    Where-Object { $_ -notlike '-*' -and $_ -ne $wordToComplete }) -join ' '
  $etcdctlWords[$path] | Where-Object { $_ -like "$wordToComplete*" } |
    ForEach-Object { [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_) }
}
`;
}

/** Runs `completion <shell>` for the tree under `root`. */
export function completionRunner(
  shell: 'bash' | 'zsh' | 'fish' | 'powershell',
  root: () => CommandSpec,
  globals: readonly FlagSpec[],
): (context: CommandContext) => Promise<void> {
  return async (context) => {
    const table = completionTable(root(), globals);
    const scripts = {
      bash: () => bashScript(table),
      // zsh runs the bash script through its bash completion layer.
      zsh: () => `#compdef etcdctl\nautoload -U +X bashcompinit && bashcompinit\n${bashScript(table)}`,
      fish: () => fishScript(table),
      powershell: () => powershellScript(table),
    };
    context.output.out(scripts[shell]());
  };
}
