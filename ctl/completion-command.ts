/**
 * `etcdctl completion bash|zsh|fish|powershell`: a completion script for the shell. The scripts
 * are tsetcdctl's own: they complete command names and flags from the command tree, which they
 * carry as a table (etcdctl's scripts ask the program itself instead).
 */
import type { CommandSpec } from './command-tree.js';
import type { CommandContext } from './context.js';
import type { FlagSpec } from './flags.js';

/** The names the scripts complete: tsetcdctl, and etcdctl for those who run it under that name. */
const programNames = ['tsetcdctl', 'etcdctl'];

interface CompletionTable {
  /** For each command path ('' for the root): the words that may follow it. */
  readonly words: Map<string, string[]>;
  /** Flags (long and short forms) whose value is the next word unless given with '='. */
  readonly valueFlags: string[];
}

function completionTable(root: CommandSpec, globals: readonly FlagSpec[]): CompletionTable {
  const words = new Map<string, string[]>();
  const valueFlags = new Set<string>();
  const flagWords = (specs: readonly FlagSpec[]): string[] =>
    specs.filter((spec) => spec.hidden !== true).map((spec) => `--${spec.name}`);
  const noteValueFlags = (specs: readonly FlagSpec[]): void => {
    for (const spec of specs.filter((flag) => flag.kind !== 'bool')) {
      valueFlags.add(`--${spec.name}`);
      if (spec.shorthand !== undefined) valueFlags.add(`-${spec.shorthand}`);
    }
  };
  const walk = (command: CommandSpec, path: string, inherited: readonly FlagSpec[]): void => {
    const children = (command.children ?? []).map((child) => child.name);
    const persistent = [...inherited, ...(command.persistentFlags ?? [])];
    noteValueFlags([...command.flags, ...persistent]);
    words.set(path, [...children, ...flagWords([...command.flags, ...persistent]), '--help']);
    for (const child of command.children ?? [])
      walk(child, path === '' ? child.name : `${path} ${child.name}`, persistent);
  };
  walk({ ...root, persistentFlags: [] }, '', globals);
  return { words, valueFlags: [...valueFlags].sort() };
}

/**
 * The bash script: it walks the words before the cursor, descending into a subcommand only when
 * the path so far has one of that name (so arguments such as keys do not count), and stepping
 * over each flag's value, whether it follows as the next word or after '=' (bash splits
 * --flag=value into three words).
 */
function bashScript(table: CompletionTable): string {
  const cases = [...table.words].map(([path, words]) => `    "${path}") echo "${words.join(' ')}" ;;`).join('\n');
  return `# bash completion for tsetcdctl (and etcdctl 3.4's commands and flags)
__tsetcdctl_words() {
  case "$1" in
${cases}
    *) return 1 ;;
  esac
}
__tsetcdctl_takes_value() {
  case "$1" in
    ${table.valueFlags.join('|')}) return 0 ;;
  esac
  return 1
}
_tsetcdctl_complete() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" word skip=0 i
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    if ((skip > 0)); then
      skip=$((skip - 1))
      continue
    fi
    case "$word" in
      -*)
        if [[ "\${COMP_WORDS[i + 1]}" == "=" ]]; then
          skip=2
        elif __tsetcdctl_takes_value "$word"; then
          skip=1
        fi
        ;;
      *) __tsetcdctl_words "\${path:+$path }$word" >/dev/null && path="\${path:+$path }$word" ;;
    esac
  done
  [[ "$cur" == "=" ]] && cur=""
  COMPREPLY=($(compgen -W "$(__tsetcdctl_words "$path")" -- "$cur"))
}
complete -o default -F _tsetcdctl_complete ${programNames.join(' ')}
`;
}

/** The zsh script: the bash one through zsh's bash completion layer (compinit first when it has not run). */
function zshScript(table: CompletionTable): string {
  return `#compdef ${programNames.join(' ')}
(( $+functions[compdef] )) || { autoload -U +X compinit && compinit; }
autoload -U +X bashcompinit && bashcompinit
${bashScript(table)}`;
}

function fishScript(table: CompletionTable): string {
  const lines = [
    '# fish completion for etcdctl (from tsetcdctl)',
    'function __etcdctl_path',
    "  commandline -opc | string match -v -- '-*' | tail -n +2 | string join ' '",
    'end',
  ];
  for (const [path, words] of table.words) {
    const names = words.filter((word) => !word.startsWith('-'));
    const flags = words.filter((word) => word.startsWith('--')).map((word) => `-l ${word.slice(2)}`);
    const when = `-n 'test "(__etcdctl_path)" = "${path}"'`;
    for (const program of programNames) {
      if (names.length > 0) lines.push(`complete -c ${program} -f ${when} -a '${names.join(' ')}'`);
      for (const flag of flags) lines.push(`complete -c ${program} ${when} ${flag}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function powershellScript(table: CompletionTable): string {
  const entries = [...table.words]
    .map(([path, words]) => `  '${path}' = @(${words.map((word) => `'${word}'`).join(', ')})`)
    .join('\n');
  return `# powershell completion for etcdctl (from tsetcdctl)
$etcdctlWords = @{
${entries}
}
Register-ArgumentCompleter -Native -CommandName ${programNames.map((name) => `'${name}'`).join(', ')} -ScriptBlock {
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
      zsh: () => zshScript(table),
      fish: () => fishScript(table),
      powershell: () => powershellScript(table),
    };
    context.output.out(scripts[shell]());
  };
}
