/**
 * The tool commands of etcdctl 3.4's tree as it declares them: make-mirror, migrate, check,
 * help and completion (names, usage lines, descriptions and flags; help text is built from them).
 */
import type { CommandSpec, Runner } from './command-tree.js';
import type { FlagSpec } from './flags.js';

const bool = (name: string, usage: string): FlagSpec => ({ name, kind: 'bool', defaultText: 'false', usage });
const text = (name: string, usage: string, defaultText = ''): FlagSpec => ({
  name,
  kind: 'string',
  defaultText,
  usage,
});

export function makeMirrorCommand(runners: Record<string, Runner>): CommandSpec {
  return {
    name: 'make-mirror',
    use: 'make-mirror [options] <destination>',
    short: 'Makes a mirror at the destination etcd cluster',
    flags: [
      text('prefix', 'Key-value prefix to mirror'),
      text('dest-prefix', 'destination prefix to mirror a prefix to a different prefix in the destination cluster'),
      bool('no-dest-prefix', 'mirror key-values to the root of the destination cluster'),
      text('dest-cacert', 'Verify certificates of TLS enabled secure servers using this CA bundle'),
      text('dest-cert', 'Identify secure client using this TLS certificate file for the destination cluster'),
      text('dest-key', 'Identify secure client using this TLS key file'),
      { ...bool('dest-insecure-transport', 'Disable transport security for client connections'), defaultText: 'true' },
    ],
    run: runners['make-mirror'],
    missing: runners['make-mirror'] === undefined,
  };
}

export function migrateCommand(runners: Record<string, Runner>): CommandSpec {
  return {
    name: 'migrate',
    use: 'migrate',
    short: 'Migrates keys in a v2 store to a mvcc store',
    flags: [
      bool('no-ttl', 'Do not convert TTL keys'),
      text('data-dir', 'Path to the data directory'),
      text('wal-dir', 'Path to the WAL directory'),
      text('transformer', 'Path to the user-provided transformer program'),
    ],
    run: runners.migrate,
  };
}

const checkFlags = (check: string, words: string): FlagSpec[] => [
  text(
    'load',
    `The ${words} check's workload model. Accepted workloads: s(small), m(medium), l(large), xl(xLarge)`,
    's',
  ),
  text('prefix', `The prefix for writing the ${words} check's keys.`, `/etcdctl-check-${check}/`),
  bool('auto-compact', 'Compact storage with last revision after test is finished.'),
  bool('auto-defrag', 'Defragment storage after test is finished.'),
];

export function checkCommand(runners: Record<string, Runner>): CommandSpec {
  return {
    name: 'check',
    use: 'check <subcommand>',
    short: 'commands for checking properties of the etcd cluster',
    flags: [],
    children: [
      {
        name: 'perf',
        use: 'perf [options]',
        short: 'Check the performance of the etcd cluster',
        flags: checkFlags('perf', 'performance'),
        run: runners['check perf'],
        missing: runners['check perf'] === undefined,
      },
      {
        name: 'datascale',
        use: 'datascale [options]',
        short: 'Check the memory usage of holding data for different workloads on a given server endpoint.',
        long: 'If no endpoint is provided, localhost will be used. If multiple endpoints are provided, first endpoint will be used.',
        flags: checkFlags('datascale', 'datascale'),
        run: runners['check datascale'],
        missing: runners['check datascale'] === undefined,
      },
    ],
  };
}

export const helpCommand: CommandSpec = {
  name: 'help',
  use: 'help [command]',
  short: 'Help about any command',
  long: 'Help provides help for any command in the application.\nSimply type etcdctl help [path to command] for full details.',
  flags: [],
};

const shellLong: Record<string, string> = {
  bash: `Generate the autocompletion script for the bash shell.

This script depends on the 'bash-completion' package.
If it is not installed already, you can install it via your OS's package manager.

To load completions in your current shell session:

	source <(etcdctl completion bash)

To load completions for every new session, execute once:

#### Linux:

	etcdctl completion bash > /etc/bash_completion.d/etcdctl

#### macOS:

	etcdctl completion bash > $(brew --prefix)/etc/bash_completion.d/etcdctl

You will need to start a new shell for this setup to take effect.
`,
  zsh: `Generate the autocompletion script for the zsh shell.

If shell completion is not already enabled in your environment you will need
to enable it.  You can execute the following once:

	echo "autoload -U compinit; compinit" >> ~/.zshrc

To load completions in your current shell session:

	source <(etcdctl completion zsh); compdef _etcdctl etcdctl

To load completions for every new session, execute once:

#### Linux:

	etcdctl completion zsh > "\${fpath[1]}/_etcdctl"

#### macOS:

	etcdctl completion zsh > $(brew --prefix)/share/zsh/site-functions/_etcdctl

You will need to start a new shell for this setup to take effect.
`,
  fish: `Generate the autocompletion script for the fish shell.

To load completions in your current shell session:

	etcdctl completion fish | source

To load completions for every new session, execute once:

	etcdctl completion fish > ~/.config/fish/completions/etcdctl.fish

You will need to start a new shell for this setup to take effect.
`,
  powershell: `Generate the autocompletion script for powershell.

To load completions in your current shell session:

	etcdctl completion powershell | Out-String | Invoke-Expression

To load completions for every new session, add the output of the above command
to your powershell profile.
`,
};

export function completionCommand(runners: Record<string, Runner>): CommandSpec {
  return {
    name: 'completion',
    use: 'completion',
    short: 'Generate the autocompletion script for the specified shell',
    long: `Generate the autocompletion script for etcdctl for the specified shell.
See each sub-command's help for details on how to use the generated script.
`,
    flags: [],
    children: ['bash', 'zsh', 'fish', 'powershell'].map((shell) => ({
      name: shell,
      use: shell,
      short: `Generate the autocompletion script for ${shell}`,
      long: shellLong[shell],
      flags: [bool('no-descriptions', 'disable completion descriptions')],
      // cobra leaves "[flags]" off the bash command's usage line only.
      disableFlagsInUseLine: shell === 'bash',
      noArgs: true,
      run: runners[`completion ${shell}`],
      missing: runners[`completion ${shell}`] === undefined,
    })),
  };
}
