/**
 * etcdctl's command tree: names, usage lines, descriptions and flags exactly as etcdctl 3.4
 * declares them (help text and error messages are built from these), plus which ones run here.
 */
import type { CommandContext } from './context.js';
import {
  checkCommand,
  completionCommand,
  helpCommand,
  makeMirrorCommand,
  migrateCommand,
} from './command-tree-tools.js';
import type { FlagSpec } from './flags.js';

export interface CommandSpec {
  readonly name: string;
  readonly use: string;
  readonly short: string;
  readonly long?: string;
  readonly flags: readonly FlagSpec[];
  /** Flags this command passes down to its subcommands. */
  readonly persistentFlags?: readonly FlagSpec[];
  readonly children?: readonly CommandSpec[];
  /** Absent for pure groups like `endpoint`, which print their help instead. */
  readonly run?: (context: CommandContext) => Promise<void>;
  /** Listed and matched like etcdctl's, but not implemented by tsetcdctl yet. */
  readonly missing?: boolean;
  /** cobra's DisableFlagsInUseLine: no " [flags]" after the usage line. */
  readonly disableFlagsInUseLine?: boolean;
  /** cobra's NoArgs: any argument is an unknown command, refused with the usage as a bad flag is. */
  readonly noArgs?: boolean;
  /**
   * Makes no client. etcdctl reads its ETCDCTL_* variables as it builds a client, so such a
   * command never sees them (ETCDCTL_WRITE_OUT leaves snapshot status's format alone).
   */
  readonly offline?: boolean;
}

export type Runner = (context: CommandContext) => Promise<void>;

const bool = (name: string, usage: string, shorthand?: string): FlagSpec => ({
  name,
  kind: 'bool',
  defaultText: 'false',
  usage,
  shorthand,
});

export const globalFlags: readonly FlagSpec[] = [
  { name: 'endpoints', kind: 'stringSlice', defaultText: '[127.0.0.1:2379]', usage: 'gRPC endpoints' },
  bool('debug', 'enable client-side debug logging'),
  {
    name: 'write-out',
    shorthand: 'w',
    kind: 'string',
    defaultText: 'simple',
    usage: 'set the output format (fields, json, protobuf, simple, table)',
  },
  bool('hex', 'print byte strings as hex encoded strings'),
  { name: 'dial-timeout', kind: 'duration', defaultText: '2s', usage: 'dial timeout for client connections' },
  {
    name: 'command-timeout',
    kind: 'duration',
    defaultText: '5s',
    usage: 'timeout for short running command (excluding dial timeout)',
  },
  { name: 'keepalive-time', kind: 'duration', defaultText: '2s', usage: 'keepalive time for client connections' },
  { name: 'keepalive-timeout', kind: 'duration', defaultText: '6s', usage: 'keepalive timeout for client connections' },
  {
    name: 'insecure-transport',
    kind: 'bool',
    defaultText: 'true',
    usage: 'disable transport security for client connections',
  },
  {
    name: 'insecure-discovery',
    kind: 'bool',
    defaultText: 'true',
    usage: 'accept insecure SRV records describing cluster endpoints',
  },
  bool(
    'insecure-skip-tls-verify',
    'skip server certificate verification (CAUTION: this option should be enabled only for testing purposes)',
  ),
  { name: 'cert', kind: 'string', defaultText: '', usage: 'identify secure client using this TLS certificate file' },
  { name: 'key', kind: 'string', defaultText: '', usage: 'identify secure client using this TLS key file' },
  {
    name: 'cacert',
    kind: 'string',
    defaultText: '',
    usage: 'verify certificates of TLS-enabled secure servers using this CA bundle',
  },
  {
    name: 'user',
    kind: 'string',
    defaultText: '',
    usage: 'username[:password] for authentication (prompt if password is not supplied)',
  },
  {
    name: 'password',
    kind: 'string',
    defaultText: '',
    usage: "password for authentication (if this option is used, --user option shouldn't include password)",
  },
  {
    name: 'discovery-srv',
    shorthand: 'd',
    kind: 'string',
    defaultText: '',
    usage: 'domain name to query for SRV records describing cluster endpoints',
  },
  {
    name: 'discovery-srv-name',
    kind: 'string',
    defaultText: '',
    usage: 'service name to query when using DNS discovery',
  },
];

const trueFlag = (name: string, usage: string): FlagSpec => ({ name, kind: 'bool', defaultText: 'true', usage });
const peerUrlsFlag = (usage: string): FlagSpec => ({ name: 'peer-urls', kind: 'string', defaultText: '', usage });
const clusterFlag = bool('cluster', 'use all endpoints from the cluster member list');

const memberListLong = `When --write-out is set to simple, this command prints out comma-separated member lists for each endpoint.
The items in the lists are ID, Status, Name, Peer Addrs, Client Addrs, Is Learner.
`;

/** cobra's automatic -h/--help flag. */
export function helpFlag(commandName: string): FlagSpec {
  return bool('help', `help for ${commandName}`, 'h');
}

const putLong = `
Puts the given key into the store.

When <value> begins with '-', <value> is interpreted as a flag.
Insert '--' for workaround:

$ put <key> -- <value>
$ put -- <key> <value>

If <value> isn't given as a command line argument and '--ignore-value' is not specified,
this command tries to read the value from standard input.

If <lease> isn't given as a command line argument and '--ignore-lease' is not specified,
this command tries to read the value from standard input.

For example,
$ cat file | put <key>
will store the content of the file to <key>.
`;

export const putFlags: readonly FlagSpec[] = [
  { name: 'lease', kind: 'string', defaultText: '0', usage: 'lease ID (in hexadecimal) to attach to the key' },
  bool('prev-kv', 'return the previous key-value pair before modification'),
  bool('ignore-value', 'updates the key using its current value'),
  bool('ignore-lease', 'updates the key using its current lease'),
];

export const getFlags: readonly FlagSpec[] = [
  { name: 'consistency', kind: 'string', defaultText: 'l', usage: 'Linearizable(l) or Serializable(s)' },
  { name: 'order', kind: 'string', defaultText: '', usage: 'Order of results; ASCEND or DESCEND (ASCEND by default)' },
  { name: 'sort-by', kind: 'string', defaultText: '', usage: 'Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION' },
  { name: 'limit', kind: 'int64', defaultText: '0', usage: 'Maximum number of results' },
  bool('prefix', 'Get keys with matching prefix'),
  bool('from-key', 'Get keys that are greater than or equal to the given key using byte compare'),
  { name: 'rev', kind: 'int64', defaultText: '0', usage: 'Specify the kv revision' },
  bool('keys-only', 'Get only the keys'),
  // etcdctl 3.5's flag, accepted here but kept out of the 3.4 help text.
  { ...bool('count-only', 'Get only the count'), hidden: true },
  bool('print-value-only', 'Only write values when using the "simple" output format'),
];

export const delFlags: readonly FlagSpec[] = [
  bool('prefix', 'delete keys with matching prefix'),
  bool('prev-kv', 'return deleted key-value pairs'),
  bool('from-key', 'delete keys that are greater than or equal to the given key using byte compare'),
];

/** The watch command's own flags, in etcdctl's declaration. */
export const watchFlags: readonly FlagSpec[] = [
  { name: 'interactive', shorthand: 'i', kind: 'bool', defaultText: 'false', usage: 'Interactive mode' },
  { name: 'prefix', kind: 'bool', defaultText: 'false', usage: 'Watch on a prefix if prefix is set' },
  { name: 'rev', kind: 'int64', defaultText: '0', usage: 'Revision to start watching' },
  {
    name: 'prev-kv',
    kind: 'bool',
    defaultText: 'false',
    usage: 'get the previous key-value pair before the event happens',
  },
];

/** The put/get/del commands as etcdctl declares them (also parsed inside txn). */
export const putUse = 'put [options] <key> <value> (<value> can also be given from stdin)';
export const getUse = 'get [options] <key> [range_end]';
export const delUse = 'del [options] <key> [range_end]';

/** Root commands in etcdctl's registration order (which its suggestions follow). */
export function rootCommands(runners: Record<string, Runner>): CommandSpec[] {
  /** A group such as `lease`, whose subcommands run as runners["lease grant"] and so on. */
  const group = (name: string, use: string, short: string, children: CommandSpec[]): CommandSpec => ({
    name,
    use,
    short,
    flags: [],
    children: children.map((child) => ({ ...child, run: runners[`${name} ${child.name}`] })),
  });
  const leaf = (name: string, use: string, short: string, flags: FlagSpec[] = []): CommandSpec => ({
    name,
    use,
    short,
    flags,
  });
  const endpointChild = (name: string, short: string, long?: string): CommandSpec => ({
    name,
    use: name,
    short,
    long,
    flags: [],
    run: runners[`endpoint ${name}`],
  });
  return [
    { name: 'get', use: getUse, short: 'Gets the key or a range of keys', flags: getFlags, run: runners.get },
    {
      name: 'put',
      use: putUse,
      short: 'Puts the given key into the store',
      long: putLong,
      flags: putFlags,
      run: runners.put,
    },
    {
      name: 'del',
      use: delUse,
      short: 'Removes the specified key or range of keys [key, range_end)',
      flags: delFlags,
      run: runners.del,
    },
    {
      name: 'txn',
      use: 'txn [options]',
      short: 'Txn processes all the requests in one transaction',
      flags: [bool('interactive', 'Input transaction in interactive mode', 'i')],
      run: runners.txn,
    },
    {
      name: 'compaction',
      use: 'compaction [options] <revision>',
      short: 'Compacts the event history in etcd',
      flags: [bool('physical', "'true' to wait for compaction to physically remove all old revisions")],
      run: runners.compaction,
    },
    group('alarm', 'alarm <subcommand>', 'Alarm related commands', [
      leaf('disarm', 'disarm', 'Disarms all alarms'),
      leaf('list', 'list', 'Lists all alarms'),
    ]),
    {
      name: 'defrag',
      use: 'defrag',
      short: 'Defragments the storage of the etcd members with given endpoints',
      flags: [
        {
          name: 'data-dir',
          kind: 'string',
          defaultText: '',
          usage: 'Optional. If present, defragments a data directory not in use by etcd.',
        },
      ],
      persistentFlags: [clusterFlag],
      run: runners.defrag,
    },
    {
      name: 'endpoint',
      use: 'endpoint <subcommand>',
      short: 'Endpoint related commands',
      flags: [],
      persistentFlags: [clusterFlag],
      children: [
        endpointChild('health', 'Checks the healthiness of endpoints specified in `--endpoints` flag'),
        endpointChild('status', 'Prints out the status of endpoints specified in `--endpoints` flag', statusLong),
        {
          name: 'hashkv',
          use: 'hashkv',
          short: 'Prints the KV history hash for each endpoint in --endpoints',
          flags: [],
          persistentFlags: [
            {
              name: 'rev',
              kind: 'int64',
              defaultText: '0',
              usage: 'maximum revision to hash (default: all revisions)',
            },
          ],
          run: runners['endpoint hashkv'],
        },
      ],
    },
    {
      name: 'move-leader',
      use: 'move-leader <transferee-member-id>',
      short: 'Transfers leadership to another etcd cluster member.',
      flags: [],
      run: runners['move-leader'],
    },
    {
      name: 'watch',
      use: 'watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]',
      short: 'Watches events stream on keys or prefixes',
      flags: watchFlags,
      run: runners.watch,
    },
    { name: 'version', use: 'version', short: 'Prints the version of etcdctl', flags: [], run: runners.version },
    group('lease', 'lease <subcommand>', 'Lease related commands', [
      leaf('grant', 'grant <ttl>', 'Creates leases'),
      leaf('revoke', 'revoke <leaseID>', 'Revokes leases'),
      leaf('timetolive', 'timetolive <leaseID> [options]', 'Get lease information', [
        bool('keys', 'Get keys attached to this lease'),
      ]),
      leaf('list', 'list', 'List all active leases'),
      leaf('keep-alive', 'keep-alive [options] <leaseID>', 'Keeps leases alive (renew)', [
        bool('once', 'Resets the keep-alive time to its original value and exits immediately'),
      ]),
    ]),
    group('member', 'member <subcommand>', 'Membership related commands', [
      leaf('add', 'add <memberName> [options]', 'Adds a member into the cluster', [
        peerUrlsFlag('comma separated peer URLs for the new member.'),
        bool('learner', 'indicates if the new member is raft learner'),
      ]),
      leaf('remove', 'remove <memberID>', 'Removes a member from the cluster'),
      leaf('update', 'update <memberID> [options]', 'Updates a member in the cluster', [
        peerUrlsFlag('comma separated peer URLs for the updated member.'),
      ]),
      { ...leaf('list', 'list', 'Lists all members in the cluster'), long: memberListLong },
      {
        ...leaf('promote', 'promote <memberID>', 'Promotes a non-voting member in the cluster'),
        long: 'Promotes a non-voting learner member to a voting one in the cluster.\n',
      },
    ]),
    {
      name: 'snapshot',
      use: 'snapshot <subcommand>',
      short: 'Manages etcd node snapshots',
      flags: [],
      children: [
        {
          name: 'save',
          use: 'save <filename>',
          short: 'Stores an etcd node backend snapshot to a given file',
          flags: [],
          run: runners['snapshot save'],
        },
        {
          name: 'restore',
          use: 'restore <filename> [options]',
          short: 'Restores an etcd member snapshot to an etcd directory',
          flags: snapshotRestoreFlags,
          run: runners['snapshot restore'],
          offline: true,
        },
        {
          name: 'status',
          use: 'status <filename>',
          short: 'Gets backend snapshot status of a given file',
          long: snapshotStatusLong,
          flags: [],
          run: runners['snapshot status'],
          offline: true,
        },
      ],
    },
    makeMirrorCommand(runners),
    migrateCommand(runners),
    {
      name: 'lock',
      use: 'lock <lockname> [exec-command arg1 arg2 ...]',
      short: 'Acquires a named lock',
      flags: [{ name: 'ttl', kind: 'int64', defaultText: '10', usage: 'timeout for session' }],
      run: runners.lock,
    },
    {
      name: 'elect',
      use: 'elect <election-name> [proposal]',
      short: 'Observes and participates in leader election',
      flags: [bool('listen', 'observation mode', 'l')],
      run: runners.elect,
    },
    group('auth', 'auth <enable or disable>', 'Enable or disable authentication', [
      leaf('enable', 'enable', 'Enables authentication'),
      leaf('disable', 'disable', 'Disables authentication'),
    ]),
    group('user', 'user <subcommand>', 'User related commands', [
      leaf('add', 'add <user name or user:password> [options]', 'Adds a new user', [
        trueFlag('interactive', 'Read password from stdin instead of interactive terminal'),
        {
          name: 'new-user-password',
          kind: 'string',
          defaultText: '',
          usage: 'Supply password from the command line flag',
        },
        bool('no-password', 'Create a user without password (CN based auth only)'),
      ]),
      leaf('delete', 'delete <user name>', 'Deletes a user'),
      leaf('get', 'get <user name> [options]', 'Gets detailed information of a user', [
        bool('detail', 'Show permissions of roles granted to the user'),
      ]),
      leaf('list', 'list', 'Lists all users'),
      leaf('passwd', 'passwd <user name> [options]', 'Changes password of user', [
        trueFlag('interactive', 'If true, read password from stdin instead of interactive terminal'),
      ]),
      leaf('grant-role', 'grant-role <user name> <role name>', 'Grants a role to a user'),
      leaf('revoke-role', 'revoke-role <user name> <role name>', 'Revokes a role from a user'),
    ]),
    group('role', 'role <subcommand>', 'Role related commands', [
      leaf('add', 'add <role name>', 'Adds a new role'),
      leaf('delete', 'delete <role name>', 'Deletes a role'),
      leaf('get', 'get <role name>', 'Gets detailed information of a role'),
      leaf('list', 'list', 'Lists all roles'),
      leaf(
        'grant-permission',
        'grant-permission [options] <role name> <permission type> <key> [endkey]',
        'Grants a key to a role',
        [
          bool('prefix', 'grant a prefix permission'),
          bool(
            'from-key',
            'grant a permission of keys that are greater than or equal to the given key using byte compare',
          ),
        ],
      ),
      leaf('revoke-permission', 'revoke-permission <role name> <key> [endkey]', 'Revokes a key from a role', [
        bool('prefix', 'revoke a prefix permission'),
        bool(
          'from-key',
          'revoke a permission of keys that are greater than or equal to the given key using byte compare',
        ),
      ]),
    ]),
    checkCommand(runners),
    helpCommand,
    completionCommand(runners),
  ];
}

const snapshotStatusLong = `When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.
The items in the lists are hash, revision, total keys, total size.
`;

const snapshotRestoreFlags: readonly FlagSpec[] = [
  { name: 'data-dir', kind: 'string', defaultText: '', usage: 'Path to the data directory' },
  {
    name: 'wal-dir',
    kind: 'string',
    defaultText: '',
    usage: 'Path to the WAL directory (use --data-dir if none given)',
  },
  {
    name: 'initial-cluster',
    kind: 'string',
    defaultText: 'default=http://localhost:2380',
    usage: 'Initial cluster configuration for restore bootstrap',
  },
  {
    name: 'initial-cluster-token',
    kind: 'string',
    defaultText: 'etcd-cluster',
    usage: 'Initial cluster token for the etcd cluster during restore bootstrap',
  },
  {
    name: 'initial-advertise-peer-urls',
    kind: 'string',
    defaultText: 'http://localhost:2380',
    usage: "List of this member's peer URLs to advertise to the rest of the cluster",
  },
  { name: 'name', kind: 'string', defaultText: 'default', usage: 'Human-readable name for this member' },
  bool('skip-hash-check', 'Ignore snapshot integrity hash value (required if copied from data directory)'),
];

const statusLong = `When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.
The items in the lists are endpoint, ID, version, db size, is leader, is learner, raft term, raft index, raft applied index, errors.
`;

/** The COMMANDS section of `etcdctl --help`: every runnable command etcdctl 3.4 has. */
export const rootHelpCommands: ReadonlyArray<readonly [string, string]> = [
  ['alarm disarm', 'Disarms all alarms'],
  ['alarm list', 'Lists all alarms'],
  ['auth disable', 'Disables authentication'],
  ['auth enable', 'Enables authentication'],
  ['check datascale', 'Check the memory usage of holding data for different workloads on a given server endpoint.'],
  ['check perf', 'Check the performance of the etcd cluster'],
  ['compaction', 'Compacts the event history in etcd'],
  ['completion bash', 'Generate the autocompletion script for bash'],
  ['completion fish', 'Generate the autocompletion script for fish'],
  ['completion powershell', 'Generate the autocompletion script for powershell'],
  ['completion zsh', 'Generate the autocompletion script for zsh'],
  ['defrag', 'Defragments the storage of the etcd members with given endpoints'],
  ['del', 'Removes the specified key or range of keys [key, range_end)'],
  ['elect', 'Observes and participates in leader election'],
  ['endpoint hashkv', 'Prints the KV history hash for each endpoint in --endpoints'],
  ['endpoint health', 'Checks the healthiness of endpoints specified in `--endpoints` flag'],
  ['endpoint status', 'Prints out the status of endpoints specified in `--endpoints` flag'],
  ['get', 'Gets the key or a range of keys'],
  ['help', 'Help about any command'],
  ['lease grant', 'Creates leases'],
  ['lease keep-alive', 'Keeps leases alive (renew)'],
  ['lease list', 'List all active leases'],
  ['lease revoke', 'Revokes leases'],
  ['lease timetolive', 'Get lease information'],
  ['lock', 'Acquires a named lock'],
  ['make-mirror', 'Makes a mirror at the destination etcd cluster'],
  ['member add', 'Adds a member into the cluster'],
  ['member list', 'Lists all members in the cluster'],
  ['member promote', 'Promotes a non-voting member in the cluster'],
  ['member remove', 'Removes a member from the cluster'],
  ['member update', 'Updates a member in the cluster'],
  ['migrate', 'Migrates keys in a v2 store to a mvcc store'],
  ['move-leader', 'Transfers leadership to another etcd cluster member.'],
  ['put', 'Puts the given key into the store'],
  ['role add', 'Adds a new role'],
  ['role delete', 'Deletes a role'],
  ['role get', 'Gets detailed information of a role'],
  ['role grant-permission', 'Grants a key to a role'],
  ['role list', 'Lists all roles'],
  ['role revoke-permission', 'Revokes a key from a role'],
  ['snapshot restore', 'Restores an etcd member snapshot to an etcd directory'],
  ['snapshot save', 'Stores an etcd node backend snapshot to a given file'],
  ['snapshot status', 'Gets backend snapshot status of a given file'],
  ['txn', 'Txn processes all the requests in one transaction'],
  ['user add', 'Adds a new user'],
  ['user delete', 'Deletes a user'],
  ['user get', 'Gets detailed information of a user'],
  ['user grant-role', 'Grants a role to a user'],
  ['user list', 'Lists all users'],
  ['user passwd', 'Changes password of user'],
  ['user revoke-role', 'Revokes a role from a user'],
  ['version', 'Prints the version of etcdctl'],
  ['watch', 'Watches events stream on keys or prefixes'],
];
