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
  /** For each command path ('' for the root): the words that may follow it (fish and powershell). */
  readonly words: Map<string, string[]>;
  /** For each command path: its subcommands' names. */
  readonly children: Map<string, string[]>;
  /**
   * For each command path: its flags as `--long`, `--long:-s` when it has a shorthand, and a
   * trailing `+` when it may be given again (a list, which etcdctl still offers once given).
   */
  readonly flags: Map<string, string[]>;
  /** For each command path: its flags (long and short forms) whose value is the next word unless given with '='. */
  readonly valueFlags: Map<string, string[]>;
}

/** etcdctl's help flag, which every command has. */
const helpFlag = '--help:-h';

function completionTable(root: CommandSpec, globals: readonly FlagSpec[]): CompletionTable {
  const words = new Map<string, string[]>();
  const children = new Map<string, string[]>();
  const flags = new Map<string, string[]>();
  const valueFlags = new Map<string, string[]>();
  const flagWords = (specs: readonly FlagSpec[]): string[] =>
    specs.filter((spec) => spec.hidden !== true).map((spec) => `--${spec.name}`);
  const flagEntries = (specs: readonly FlagSpec[]): string[] =>
    specs
      .filter((spec) => spec.hidden !== true)
      .map(
        (spec) =>
          `--${spec.name}${spec.shorthand === undefined ? '' : `:-${spec.shorthand}`}${spec.kind === 'stringSlice' ? '+' : ''}`,
      );
  const valueFlagWords = (specs: readonly FlagSpec[]): string[] =>
    specs
      .filter((flag) => flag.kind !== 'bool')
      .flatMap((spec) =>
        spec.shorthand === undefined ? [`--${spec.name}`] : [`--${spec.name}`, `-${spec.shorthand}`],
      );
  const walk = (command: CommandSpec, path: string, inherited: readonly FlagSpec[]): void => {
    const names = (command.children ?? []).map((child) => child.name);
    const persistent = [...inherited, ...(command.persistentFlags ?? [])];
    valueFlags.set(path, valueFlagWords([...command.flags, ...persistent]));
    words.set(path, [...names, ...flagWords([...command.flags, ...persistent]), '--help']);
    children.set(path, names);
    flags.set(path, [...flagEntries([...command.flags, ...persistent]), helpFlag]);
    for (const child of command.children ?? [])
      walk(child, path === '' ? child.name : `${path} ${child.name}`, persistent);
  };
  walk({ ...root, persistentFlags: [] }, '', globals);
  return { words, children, flags, valueFlags };
}

/** A bash `case` over command paths printing each path's list; unknown paths return 1. */
function bashCase(name: string, lists: Map<string, string[]>): string {
  const cases = [...lists].map(([path, list]) => `    "${path}") echo "${list.join(' ')}" ;;`).join('\n');
  return `${name}() {
  case "$1" in
${cases}
    *) return 1 ;;
  esac
}`;
}

/**
 * The bash script. It offers what etcdctl's own (which asks etcdctl) offers: subcommands while
 * no argument has been given, flags only for a word starting with '-' (short forms too unless it
 * starts with '--'), never a flag already given unless it is a list, nothing for a flag's value,
 * and no flags after '--'. It walks the words before the cursor, descending into a subcommand
 * only when the path so far has one of that name, and stepping over each flag's value, whether
 * it follows as the next word or after '=' (bash splits --flag=value into three words). `help`
 * completes the command path after it.
 */
function bashScript(table: CompletionTable): string {
  return `# bash completion for tsetcdctl (and etcdctl 3.4's commands and flags)
${bashCase('__tsetcdctl_children', table.children)}
${bashCase('__tsetcdctl_flags', table.flags)}
${bashCase('__tsetcdctl_value_flags', table.valueFlags)}
_tsetcdctl_complete() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" help="" word skip=0 args=0 dashed=0 used=" " i entry long short
  local candidates=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    if ((skip > 0)); then
      skip=$((skip - 1))
      continue
    fi
    if ((dashed)); then
      args=$((args + 1))
      continue
    fi
    case "$word" in
      --) dashed=1 ;;
      -*)
        used+="\${word%%=*} "
        if [[ "\${COMP_WORDS[i + 1]}" == "=" ]]; then
          skip=2
        elif [[ "$word" != *=* && " $(__tsetcdctl_value_flags "$path") " == *" $word "* ]]; then
          skip=1
        fi
        ;;
      *)
        if [[ "$path" == help ]] && ((args == 0)) && __tsetcdctl_children "\${help:+$help }$word" >/dev/null; then
          help="\${help:+$help }$word"
        elif ((args == 0)) && [[ " $(__tsetcdctl_children "$path") " == *" $word "* ]]; then
          path="\${path:+$path }$word"
        else
          args=$((args + 1))
        fi
        ;;
    esac
  done
  COMPREPLY=()
  # The word at the cursor is a flag's value: etcdctl offers none.
  ((skip > 0)) && return 0
  [[ "$cur" == "=" ]] && return 0
  if [[ "$cur" == -* ]]; then
    ((dashed)) && return 0
    for entry in $(__tsetcdctl_flags "$path"); do
      long="\${entry%%[:+]*}"
      short=""
      [[ "$entry" == *:* ]] && short="\${entry#*:}" && short="\${short%+}"
      if [[ "$entry" != *+ ]] && [[ "$used" == *" $long "* || ( -n "$short" && "$used" == *" $short "* ) ]]; then
        continue
      fi
      candidates+=("$long")
      [[ -n "$short" && "$cur" != --* ]] && candidates+=("$short")
    done
  elif ((args == 0)); then
    if [[ "$path" == help ]]; then
      candidates=($(__tsetcdctl_children "$help"))
    else
      candidates=($(__tsetcdctl_children "$path"))
    fi
  fi
  COMPREPLY=($(compgen -W "\${candidates[*]}" -- "$cur"))
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
