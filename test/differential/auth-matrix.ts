/**
 * The authorisation matrix: every etcd v3 RPC, called over gRPC with each class of credentials,
 * on a member with auth enabled. Each cell is the answer's gRPC code and message (or OK and a few
 * facts of the response that authorisation decides, like which keys a lease shows). The same
 * calls run in the same order on every member, so two members that agree on authorisation print
 * the same matrix.
 */
import * as grpc from '@grpc/grpc-js';
import type { GrpcMethod, WireMessage } from '../../src/api/proto-wire.js';
import { describeAnswer, EtcdGrpc, type Answer } from '../support/etcd-grpc.js';

/** Who makes the call. */
export const credentialClasses = [
  'no credentials',
  'bad password',
  'invalid token',
  'stale token',
  'no permission',
  'permission',
  'root',
] as const;
export type CredentialClass = (typeof credentialClasses)[number];

/** The classes that mean something while auth is disabled: no token, and a token nobody issued. */
export const authOffClasses: readonly CredentialClass[] = ['no credentials', 'invalid token'];

/** Whether the member runs the matrix with auth enabled (the users' classes) or disabled (authOffClasses). */
export type AuthMode = 'auth on' | 'auth off';

/** What a cell can do: call as its own credential class, or as root to set up and clean up. */
export interface Cell {
  /** A number unique in the run, for names of keys, users and roles the cell creates. */
  readonly n: number;
  /** The member's id as a decimal string. */
  readonly memberId: string;
  call(method: GrpcMethod, request: WireMessage): Promise<Answer>;
  stream(method: GrpcMethod, request: WireMessage): Promise<Answer>;
  /** A call as root that must succeed; setup and cleanup. */
  root(method: GrpcMethod, request: WireMessage): Promise<WireMessage>;
}

/** One RPC (or one shape of it, e.g. a txn with a nested txn) across every credential class. */
export interface Row {
  readonly name: string;
  readonly method: GrpcMethod;
  run(cell: Cell): Promise<string>;
}

/** A token no member issued. No dot: etcd 3.4 reads `name.N` as a simple token issued at raft index N and waits for N. */
const invalidToken = 'not-a-token';
const rootPassword = 'rootpw';
const alicePassword = 'alicepw';
/** A user's token once the password changed: etcd's simple tokens are invalidated with it. */
const staleUser = 'stale';
const leaseTtlSeconds = 3_600;

const bytes = (text: string): Buffer => Buffer.from(text, 'utf8');
/** The end of the range holding every key that starts with `prefix` (prefix ends below 0xff). */
const prefixEnd = (prefix: string): Buffer => {
  const end = bytes(prefix);
  end[end.length - 1] = (end[end.length - 1] ?? 0) + 1;
  return end;
};
const text = (value: unknown): string => (Buffer.isBuffer(value) ? value.toString('utf8') : String(value));

/** `OK` plus facts of the response, or the error's code and message. */
function outcome(answer: Answer, facts?: (response: WireMessage) => string): string {
  if (answer.code !== grpc.status.OK || answer.message !== '' || facts === undefined) return describeAnswer(answer);
  return `OK ${facts(answer.response)}`;
}

const rangeFacts = (response: WireMessage): string => `count=${String(response.count)}`;
const txnFacts = (response: WireMessage): string => `succeeded=${String(response.succeeded)}`;
const watchFacts = (response: WireMessage): string =>
  `created=${String(response.created)} canceled=${String(response.canceled)} reason="${String(response.cancelReason)}"`;
const keepAliveFacts = (response: WireMessage): string => (Number(response.TTL) > 0 ? 'ttl>0' : 'ttl=0');
const leaderFacts = (response: WireMessage): string => {
  const kv = response.kv as WireMessage | undefined;
  return kv === undefined ? 'no leader kv' : `value=${text(kv.value)}`;
};
const leaseKeysFacts = (response: WireMessage): string =>
  `keys=[${(response.keys as unknown[]).map(text).sort().join(',')}]`;

/** Grants a lease as root and attaches `key` to it when given; returns the lease id. */
async function rootLease(cell: Cell, key?: string): Promise<string> {
  const granted = await cell.root('etcdserverpb.Lease/LeaseGrant', { TTL: leaseTtlSeconds });
  const id = String(granted.ID);
  if (key !== undefined) await cell.root('etcdserverpb.KV/Put', { key: bytes(key), value: bytes('v'), lease: id });
  return id;
}

function kvRows(): Row[] {
  return [
    {
      name: 'Range allowed/k',
      method: 'etcdserverpb.KV/Range',
      run: async (c) => outcome(await c.call('etcdserverpb.KV/Range', { key: bytes('allowed/k') }), rangeFacts),
    },
    {
      name: 'Range allowed/ prefix, serializable',
      method: 'etcdserverpb.KV/Range',
      run: async (c) =>
        outcome(
          await c.call('etcdserverpb.KV/Range', {
            key: bytes('allowed/'),
            rangeEnd: prefixEnd('allowed/'),
            serializable: true,
            keysOnly: true,
          }),
          rangeFacts,
        ),
    },
    {
      name: 'Put allowed/k',
      method: 'etcdserverpb.KV/Put',
      run: async (c) => outcome(await c.call('etcdserverpb.KV/Put', { key: bytes('allowed/k'), value: bytes('v') })),
    },
    {
      name: 'Put allowed/k prev_kv',
      method: 'etcdserverpb.KV/Put',
      run: async (c) =>
        outcome(await c.call('etcdserverpb.KV/Put', { key: bytes('allowed/k'), value: bytes('v'), prevKv: true })),
    },
    {
      name: 'Put writeonly/k prev_kv (write-only key)',
      method: 'etcdserverpb.KV/Put',
      run: async (c) =>
        outcome(await c.call('etcdserverpb.KV/Put', { key: bytes('writeonly/k'), value: bytes('w'), prevKv: true })),
    },
    {
      name: 'Put allowed/x with a lease attached to secret/',
      method: 'etcdserverpb.KV/Put',
      run: async (c) => {
        const lease = await rootLease(c, `secret/lease/${c.n}`);
        return outcome(await c.call('etcdserverpb.KV/Put', { key: bytes('allowed/x'), value: bytes('v'), lease }));
      },
    },
    {
      name: 'DeleteRange allowed/del/n',
      method: 'etcdserverpb.KV/DeleteRange',
      run: async (c) => {
        const key = bytes(`allowed/del/${c.n}`);
        await c.root('etcdserverpb.KV/Put', { key, value: bytes('v') });
        return outcome(
          await c.call('etcdserverpb.KV/DeleteRange', { key, prevKv: true }),
          (r) => `deleted=${String(r.deleted)}`,
        );
      },
    },
    ...txnRows(),
    {
      name: 'Compact',
      method: 'etcdserverpb.KV/Compact',
      run: async (c) => {
        // A fresh revision per cell, so each permitted compaction succeeds whatever ran before.
        const put = await c.root('etcdserverpb.KV/Put', { key: bytes('allowed/compact'), value: bytes('v') });
        const revision = (put.header as WireMessage).revision;
        return outcome(await c.call('etcdserverpb.KV/Compact', { revision }));
      },
    },
  ];
}

const rangeOp = (key: string): WireMessage => ({ requestRange: { key: bytes(key) } });

function txnRows(): Row[] {
  const txn = (name: string, request: (c: Cell) => Promise<WireMessage> | WireMessage): Row => ({
    name,
    method: 'etcdserverpb.KV/Txn',
    run: async (c) => outcome(await c.call('etcdserverpb.KV/Txn', await request(c)), txnFacts),
  });
  const valueIs = (key: string, value: string): WireMessage => ({
    key: bytes(key),
    target: 3, // VALUE
    result: 0, // EQUAL
    value: bytes(value),
  });
  return [
    txn('Txn compare allowed/k, put allowed/k', () => ({
      compare: [valueIs('allowed/k', 'v')],
      success: [{ requestPut: { key: bytes('allowed/k'), value: bytes('v') } }],
      failure: [rangeOp('allowed/k')],
    })),
    txn('Txn compare secret/k', () => ({ compare: [valueIs('secret/k', 's')], success: [rangeOp('allowed/k')] })),
    txn('Txn failure branch reads secret/k', () => ({
      compare: [valueIs('allowed/k', 'v')],
      success: [rangeOp('allowed/k')],
      failure: [rangeOp('secret/k')],
    })),
    txn('Txn nested txn reads allowed/k', () => ({ success: [{ requestTxn: { success: [rangeOp('allowed/k')] } }] })),
    txn('Txn nested txn reads secret/k', () => ({ success: [{ requestTxn: { success: [rangeOp('secret/k')] } }] })),
    txn('Txn delete allowed/del/n prev_kv', async (c) => {
      const key = bytes(`allowed/del/${c.n}`);
      await c.root('etcdserverpb.KV/Put', { key, value: bytes('v') });
      return { success: [{ requestDeleteRange: { key, prevKv: true } }] };
    }),
    txn('Txn put writeonly/k prev_kv (write-only key)', () => ({
      success: [{ requestPut: { key: bytes('writeonly/k'), value: bytes('w'), prevKv: true } }],
    })),
    txn('Txn put allowed/x with a lease attached to secret/', async (c) => {
      const lease = await rootLease(c, `secret/lease/${c.n}`);
      return { success: [{ requestPut: { key: bytes('allowed/x'), value: bytes('v'), lease } }] };
    }),
  ];
}

function watchAndLeaseRows(): Row[] {
  return [
    {
      name: 'Watch create allowed/k',
      method: 'etcdserverpb.Watch/Watch',
      run: async (c) =>
        outcome(await c.stream('etcdserverpb.Watch/Watch', { createRequest: { key: bytes('allowed/k') } }), watchFacts),
    },
    {
      name: 'LeaseGrant',
      method: 'etcdserverpb.Lease/LeaseGrant',
      run: async (c) => {
        const answer = await c.call('etcdserverpb.Lease/LeaseGrant', { TTL: leaseTtlSeconds });
        if (answer.code === grpc.status.OK) await c.root('etcdserverpb.Lease/LeaseRevoke', { ID: answer.response.ID });
        return outcome(answer);
      },
    },
    {
      name: 'LeaseRevoke, lease without keys',
      method: 'etcdserverpb.Lease/LeaseRevoke',
      run: async (c) => outcome(await c.call('etcdserverpb.Lease/LeaseRevoke', { ID: await rootLease(c) })),
    },
    {
      name: 'LeaseRevoke, lease attached to allowed/',
      method: 'etcdserverpb.Lease/LeaseRevoke',
      run: async (c) =>
        outcome(await c.call('etcdserverpb.Lease/LeaseRevoke', { ID: await rootLease(c, `allowed/lease/${c.n}`) })),
    },
    {
      name: 'LeaseKeepAlive, lease attached to allowed/',
      method: 'etcdserverpb.Lease/LeaseKeepAlive',
      run: async (c) => {
        const ID = await rootLease(c, `allowed/lease/${c.n}`);
        return outcome(await c.stream('etcdserverpb.Lease/LeaseKeepAlive', { ID }), keepAliveFacts);
      },
    },
    {
      name: 'LeaseKeepAlive, lease attached to secret/',
      method: 'etcdserverpb.Lease/LeaseKeepAlive',
      run: async (c) => {
        const ID = await rootLease(c, `secret/lease/${c.n}`);
        return outcome(await c.stream('etcdserverpb.Lease/LeaseKeepAlive', { ID }), keepAliveFacts);
      },
    },
    {
      name: 'LeaseTimeToLive, no keys',
      method: 'etcdserverpb.Lease/LeaseTimeToLive',
      run: async (c) => {
        const ID = await rootLease(c, `allowed/lease/${c.n}`);
        return outcome(
          await c.call('etcdserverpb.Lease/LeaseTimeToLive', { ID }),
          (r) => `grantedTTL=${String(r.grantedTTL)}`,
        );
      },
    },
    {
      name: 'LeaseTimeToLive keys, lease attached to secret/',
      method: 'etcdserverpb.Lease/LeaseTimeToLive',
      run: async (c) => {
        const ID = await rootLease(c, `secret/lease/${c.n}`);
        return outcome(await c.call('etcdserverpb.Lease/LeaseTimeToLive', { ID, keys: true }), leaseKeysFacts);
      },
    },
    {
      name: 'LeaseLeases (a lease holds a secret/ key)',
      method: 'etcdserverpb.Lease/LeaseLeases',
      run: async (c) => outcome(await c.call('etcdserverpb.Lease/LeaseLeases', {})),
    },
  ];
}

/** An id no member has. */
const unknownMemberId = '1234567';

function clusterAndMaintenanceRows(): Row[] {
  const simple = (name: string, method: GrpcMethod, request: (c: Cell) => WireMessage): Row => ({
    name,
    method,
    run: async (c) => outcome(await c.call(method, request(c))),
  });
  return [
    {
      name: 'MemberAdd learner',
      method: 'etcdserverpb.Cluster/MemberAdd',
      run: async (c) => {
        // A learner does not count towards quorum, so a root cell that adds one leaves the
        // one-member cluster writable; it is removed at once.
        const peerURLs = [`http://127.0.0.1:${40_000 + c.n}`];
        const answer = await c.call('etcdserverpb.Cluster/MemberAdd', { peerURLs, isLearner: true });
        const added = answer.response.member as WireMessage | undefined;
        if (answer.code === grpc.status.OK && added !== undefined)
          await c.root('etcdserverpb.Cluster/MemberRemove', { ID: added.ID });
        return outcome(answer);
      },
    },
    simple('MemberRemove unknown id', 'etcdserverpb.Cluster/MemberRemove', () => ({ ID: unknownMemberId })),
    simple('MemberUpdate unknown id', 'etcdserverpb.Cluster/MemberUpdate', () => ({
      ID: unknownMemberId,
      peerURLs: ['http://127.0.0.1:39999'],
    })),
    simple('MemberPromote unknown id', 'etcdserverpb.Cluster/MemberPromote', () => ({ ID: unknownMemberId })),
    simple('MemberList', 'etcdserverpb.Cluster/MemberList', () => ({})),
    simple('Alarm GET', 'etcdserverpb.Maintenance/Alarm', () => ({ action: 0 })),
    simple('Alarm DEACTIVATE NOSPACE', 'etcdserverpb.Maintenance/Alarm', (c) => ({
      action: 2,
      memberID: c.memberId,
      alarm: 1,
    })),
    simple('Status', 'etcdserverpb.Maintenance/Status', () => ({})),
    simple('Defragment', 'etcdserverpb.Maintenance/Defragment', () => ({})),
    simple('Hash', 'etcdserverpb.Maintenance/Hash', () => ({})),
    simple('HashKV', 'etcdserverpb.Maintenance/HashKV', () => ({ revision: 0 })),
    {
      name: 'Snapshot',
      method: 'etcdserverpb.Maintenance/Snapshot',
      run: async (c) => outcome(await c.stream('etcdserverpb.Maintenance/Snapshot', {})),
    },
    simple('MoveLeader to an unknown member', 'etcdserverpb.Maintenance/MoveLeader', () => ({
      targetID: unknownMemberId,
    })),
  ];
}

function authRows(): Row[] {
  const simple = (
    name: string,
    method: GrpcMethod,
    request: (c: Cell) => Promise<WireMessage> | WireMessage,
    facts?: (response: WireMessage) => string,
  ): Row => ({ name, method, run: async (c) => outcome(await c.call(method, await request(c)), facts) });
  const scratchUser = async (c: Cell, name: string, role?: string): Promise<string> => {
    await c.root('etcdserverpb.Auth/UserAdd', { name, options: { noPassword: true } });
    if (role !== undefined) await c.root('etcdserverpb.Auth/UserGrantRole', { user: name, role });
    return name;
  };
  const scratchRole = async (c: Cell, name: string, key?: string): Promise<string> => {
    await c.root('etcdserverpb.Auth/RoleAdd', { name });
    if (key !== undefined)
      await c.root('etcdserverpb.Auth/RoleGrantPermission', { name, perm: { permType: 0, key: bytes(key) } });
    return name;
  };
  return [
    simple('AuthEnable (already enabled)', 'etcdserverpb.Auth/AuthEnable', () => ({})),
    simple(
      'AuthStatus',
      'etcdserverpb.Auth/AuthStatus',
      () => ({}),
      (r) => `enabled=${String(r.enabled)}`,
    ),
    simple('Authenticate alice', 'etcdserverpb.Auth/Authenticate', () => ({ name: 'alice', password: alicePassword })),
    simple('UserAdd', 'etcdserverpb.Auth/UserAdd', (c) => ({ name: `added${c.n}`, options: { noPassword: true } })),
    simple(
      'UserGet alice',
      'etcdserverpb.Auth/UserGet',
      () => ({ name: 'alice' }),
      (r) => `roles=${(r.roles as string[]).join(',')}`,
    ),
    simple('UserList', 'etcdserverpb.Auth/UserList', () => ({})),
    simple('UserDelete', 'etcdserverpb.Auth/UserDelete', async (c) => ({ name: await scratchUser(c, `del${c.n}`) })),
    simple('UserChangePassword', 'etcdserverpb.Auth/UserChangePassword', async (c) => ({
      name: await scratchUser(c, `pw${c.n}`),
      password: 'new',
    })),
    simple('UserGrantRole', 'etcdserverpb.Auth/UserGrantRole', async (c) => ({
      user: await scratchUser(c, `grant${c.n}`),
      role: 'app',
    })),
    simple('UserRevokeRole', 'etcdserverpb.Auth/UserRevokeRole', async (c) => ({
      name: await scratchUser(c, `revoke${c.n}`, 'app'),
      role: 'app',
    })),
    simple('RoleAdd', 'etcdserverpb.Auth/RoleAdd', (c) => ({ name: `addedrole${c.n}` })),
    simple(
      'RoleGet app',
      'etcdserverpb.Auth/RoleGet',
      () => ({ role: 'app' }),
      (r) => `perms=${(r.perm as unknown[]).length}`,
    ),
    simple('RoleList', 'etcdserverpb.Auth/RoleList', () => ({})),
    simple('RoleDelete', 'etcdserverpb.Auth/RoleDelete', async (c) => ({
      role: await scratchRole(c, `delrole${c.n}`),
    })),
    simple('RoleGrantPermission', 'etcdserverpb.Auth/RoleGrantPermission', async (c) => ({
      name: await scratchRole(c, `grantrole${c.n}`),
      perm: { permType: 2, key: bytes('allowed/'), rangeEnd: prefixEnd('allowed/') },
    })),
    simple('RoleRevokePermission', 'etcdserverpb.Auth/RoleRevokePermission', async (c) => ({
      role: await scratchRole(c, `revokerole${c.n}`, 'x'),
      key: bytes('x'),
    })),
  ];
}

function lockAndElectionRows(): Row[] {
  const campaignAsRoot = async (c: Cell, name: string): Promise<WireMessage> => {
    const lease = await rootLease(c);
    const campaign = await c.root('v3electionpb.Election/Campaign', { name: bytes(name), lease, value: bytes('r') });
    return campaign.leader as WireMessage;
  };
  return [
    {
      name: 'Lock allowed/lock/n',
      method: 'v3lockpb.Lock/Lock',
      run: async (c) => {
        const lease = await rootLease(c);
        const answer = await c.call('v3lockpb.Lock/Lock', { name: bytes(`allowed/lock/${c.n}`), lease });
        if (answer.code === grpc.status.OK) await c.root('v3lockpb.Lock/Unlock', { key: answer.response.key });
        return outcome(answer);
      },
    },
    {
      name: 'Unlock a lock root holds',
      method: 'v3lockpb.Lock/Unlock',
      run: async (c) => {
        const lease = await rootLease(c);
        const locked = await c.root('v3lockpb.Lock/Lock', { name: bytes(`allowed/lock/${c.n}`), lease });
        return outcome(await c.call('v3lockpb.Lock/Unlock', { key: locked.key }));
      },
    },
    {
      name: 'Campaign allowed/elect/n',
      method: 'v3electionpb.Election/Campaign',
      run: async (c) => {
        const lease = await rootLease(c);
        const answer = await c.call('v3electionpb.Election/Campaign', {
          name: bytes(`allowed/elect/${c.n}`),
          lease,
          value: bytes('v'),
        });
        if (answer.code === grpc.status.OK)
          await c.root('v3electionpb.Election/Resign', { leader: answer.response.leader });
        return outcome(answer);
      },
    },
    {
      name: "Proclaim as root's leader key",
      method: 'v3electionpb.Election/Proclaim',
      run: async (c) => {
        const leader = await campaignAsRoot(c, `allowed/elect/${c.n}`);
        return outcome(await c.call('v3electionpb.Election/Proclaim', { leader, value: bytes('p') }));
      },
    },
    {
      name: 'Leader of an election root leads',
      method: 'v3electionpb.Election/Leader',
      run: async (c) => {
        await campaignAsRoot(c, `allowed/elect/${c.n}`);
        return outcome(
          await c.call('v3electionpb.Election/Leader', { name: bytes(`allowed/elect/${c.n}`) }),
          leaderFacts,
        );
      },
    },
    {
      name: 'Observe an election root leads',
      method: 'v3electionpb.Election/Observe',
      run: async (c) => {
        await campaignAsRoot(c, `allowed/elect/${c.n}`);
        return outcome(
          await c.stream('v3electionpb.Election/Observe', { name: bytes(`allowed/elect/${c.n}`) }),
          leaderFacts,
        );
      },
    },
    {
      name: "Resign root's leader key",
      method: 'v3electionpb.Election/Resign',
      run: async (c) => {
        const leader = await campaignAsRoot(c, `allowed/elect/${c.n}`);
        return outcome(await c.call('v3electionpb.Election/Resign', { leader }));
      },
    },
  ];
}

/**
 * Every row, in the order they run. AuthDisable comes last: its root cell turns auth off.
 * Downgrade is left out: etcd 3.4 has no such RPC to compare with.
 */
export function matrixRows(): Row[] {
  return [
    ...kvRows(),
    ...watchAndLeaseRows(),
    ...clusterAndMaintenanceRows(),
    ...lockAndElectionRows(),
    ...authRows(),
    {
      name: 'AuthDisable',
      method: 'etcdserverpb.Auth/AuthDisable',
      run: async (c) => outcome(await c.call('etcdserverpb.Auth/AuthDisable', {})),
    },
  ];
}

/** Methods the matrix does not call, with the reason. */
export const methodsOutsideMatrix: ReadonlyMap<GrpcMethod, string> = new Map<GrpcMethod, string>([
  ['etcdserverpb.Maintenance/Downgrade', 'not in etcd 3.4'],
  ['grpc.health.v1.Health/Check', 'gRPC health, not etcd'],
  ['grpc.health.v1.Health/Watch', 'gRPC health, not etcd'],
]);

/** The matrix as printed: one line per cell, `row | class | outcome`. */
export type Matrix = ReadonlyMap<string, string>;

export const cellKey = (row: string, credentials: CredentialClass): string => `${row} | ${credentials}`;

/** The credentials each class sends, found once per run. */
interface Credentials {
  readonly tokens: ReadonlyMap<CredentialClass, string | undefined>;
  /** What authenticating with a wrong password answered; the bad-password class stops there. */
  readonly badPasswordAnswer: Answer;
}

/**
 * Creates the users, roles, keys and leases the matrix expects on a fresh member, enables auth,
 * and returns the root token and the member id:
 * alice (class "permission") may read and write allowed/ and only write writeonly/;
 * bob (class "no permission") may read and write other/ only; stale is alice's twin whose token is
 * invalidated by a password change; root holds the root role.
 * With auth off the same users and roles are made but root (so no cell can enable auth) and
 * nobody logs in: the only token is one no member issued.
 */
async function prepare(client: EtcdGrpc, mode: AuthMode): Promise<{ credentials: Credentials; memberId: string }> {
  const must = async (method: GrpcMethod, request: WireMessage, token?: string): Promise<WireMessage> => {
    const answer = await client.unary(method, request, token);
    if (answer.code !== grpc.status.OK) throw new Error(`setup ${method} failed: ${describeAnswer(answer)}`);
    return answer.response;
  };
  for (const [key, value] of [
    ['allowed/k', 'v'],
    ['secret/k', 's'],
    ['writeonly/k', 'w'],
  ] as const)
    await must('etcdserverpb.KV/Put', { key: bytes(key), value: bytes(value) });
  await must('etcdserverpb.Auth/RoleAdd', { name: 'app' });
  await must('etcdserverpb.Auth/RoleGrantPermission', {
    name: 'app',
    perm: { permType: 2, key: bytes('allowed/'), rangeEnd: prefixEnd('allowed/') },
  });
  await must('etcdserverpb.Auth/RoleGrantPermission', {
    name: 'app',
    perm: { permType: 1, key: bytes('writeonly/'), rangeEnd: prefixEnd('writeonly/') },
  });
  await must('etcdserverpb.Auth/RoleAdd', { name: 'other' });
  await must('etcdserverpb.Auth/RoleGrantPermission', {
    name: 'other',
    perm: { permType: 2, key: bytes('other/'), rangeEnd: prefixEnd('other/') },
  });
  const users = [
    ['root', rootPassword, 'root'],
    ['alice', alicePassword, 'app'],
    ['bob', 'bobpw', 'other'],
    [staleUser, 'stalepw', 'app'],
  ] as const;
  for (const [name, password, role] of mode === 'auth on' ? users : users.slice(1)) {
    await must('etcdserverpb.Auth/UserAdd', { name, password });
    await must('etcdserverpb.Auth/UserGrantRole', { user: name, role });
  }
  const status = await must('etcdserverpb.Maintenance/Status', {});
  const memberId = String(status.header && (status.header as WireMessage).memberId);
  const lease = await must('etcdserverpb.Lease/LeaseGrant', { TTL: leaseTtlSeconds });
  await must('etcdserverpb.KV/Put', { key: bytes('secret/leased'), value: bytes('s'), lease: lease.ID });
  if (mode === 'auth off') {
    const tokens = new Map<CredentialClass, string | undefined>([['invalid token', invalidToken]]);
    return {
      credentials: { tokens, badPasswordAnswer: { code: grpc.status.OK, message: '', response: {} } },
      memberId,
    };
  }
  await must('etcdserverpb.Auth/AuthEnable', {});
  const token = async (name: string, password: string): Promise<string> =>
    String((await must('etcdserverpb.Auth/Authenticate', { name, password })).token);
  const rootToken = await token('root', rootPassword);
  const staleToken = await token(staleUser, 'stalepw');
  await must('etcdserverpb.Auth/UserChangePassword', { name: staleUser, password: 'changed' }, rootToken);
  const tokens = new Map<CredentialClass, string | undefined>([
    ['no credentials', undefined],
    ['invalid token', invalidToken],
    ['stale token', staleToken],
    ['no permission', await token('bob', 'bobpw')],
    ['permission', await token('alice', alicePassword)],
    ['root', rootToken],
  ]);
  const badPasswordAnswer = await client.unary('etcdserverpb.Auth/Authenticate', { name: 'alice', password: 'wrong' });
  return { credentials: { tokens, badPasswordAnswer }, memberId };
}

/** A call a cell makes as root to set up or clean up failed; the cell reports it. */
class RootSetupError extends Error {}

/** What cells say when root could not set them up, so one broken RPC does not hide the rest. */
export const rootSetupFailedPrefix = 'root setup failed: ';

async function runCell(row: Row, cell: Cell): Promise<string> {
  try {
    return await row.run(cell);
  } catch (error) {
    if (error instanceof RootSetupError) return `${rootSetupFailedPrefix}${error.message}`;
    throw error;
  }
}

/**
 * Runs every row with every credential class of `mode` against the member at `endpoint`; with
 * auth off, root's setup calls carry no token.
 */
export async function runMatrix(endpoint: string, rows: readonly Row[], mode: AuthMode = 'auth on'): Promise<Matrix> {
  const client = new EtcdGrpc(endpoint);
  try {
    const { credentials, memberId } = await prepare(client, mode);
    const rootToken = credentials.tokens.get('root');
    const matrix = new Map<string, string>();
    let n = 0;
    for (const row of rows) {
      for (const credentialClass of mode === 'auth on' ? credentialClasses : authOffClasses) {
        n += 1;
        if (credentialClass === 'bad password' && credentials.badPasswordAnswer.code !== grpc.status.OK) {
          matrix.set(
            cellKey(row.name, credentialClass),
            `Authenticate: ${describeAnswer(credentials.badPasswordAnswer)}`,
          );
          continue;
        }
        const token =
          credentialClass === 'bad password'
            ? String(credentials.badPasswordAnswer.response.token)
            : credentials.tokens.get(credentialClass);
        const cell: Cell = {
          n,
          memberId,
          call: (method, request) => client.unary(method, request, token),
          stream: (method, request) => client.firstOfStream(method, request, token),
          root: async (method, request) => {
            const answer = await client.unary(method, request, rootToken);
            if (answer.code !== grpc.status.OK) throw new RootSetupError(`${method}: ${describeAnswer(answer)}`);
            return answer.response;
          },
        };
        matrix.set(cellKey(row.name, credentialClass), await runCell(row, cell));
      }
    }
    return matrix;
  } finally {
    client.close();
  }
}

/**
 * A token in use while its user changes: roles revoked and granted back, a permission revoked, the
 * password changed, the role deleted and re-created, the user deleted, auth disabled and enabled.
 * Returns one `step: answer` line per step, on a fresh member.
 */
export async function runTokenLifecycle(endpoint: string): Promise<string[]> {
  const client = new EtcdGrpc(endpoint);
  const lines: string[] = [];
  const record = async (step: string, answer: Promise<Answer>): Promise<Answer> => {
    const settled = await answer;
    lines.push(`${step}: ${describeAnswer(settled)}`);
    return settled;
  };
  const range = { key: bytes('allowed/k') };
  const grantAllowed = { name: 'app', perm: { permType: 2, key: bytes('allowed/'), rangeEnd: prefixEnd('allowed/') } };
  try {
    await record('put allowed/k', client.unary('etcdserverpb.KV/Put', { key: bytes('allowed/k'), value: bytes('v') }));
    await record('add root', client.unary('etcdserverpb.Auth/UserAdd', { name: 'root', password: rootPassword }));
    await record('grant root', client.unary('etcdserverpb.Auth/UserGrantRole', { user: 'root', role: 'root' }));
    await record('add alice', client.unary('etcdserverpb.Auth/UserAdd', { name: 'alice', password: alicePassword }));
    await record('add app', client.unary('etcdserverpb.Auth/RoleAdd', { name: 'app' }));
    await record('grant app allowed/', client.unary('etcdserverpb.Auth/RoleGrantPermission', grantAllowed));
    await record('grant alice app', client.unary('etcdserverpb.Auth/UserGrantRole', { user: 'alice', role: 'app' }));
    await record('enable', client.unary('etcdserverpb.Auth/AuthEnable', {}));
    const login = async (step: string, password: string): Promise<string> =>
      String(
        (await record(step, client.unary('etcdserverpb.Auth/Authenticate', { name: 'alice', password }))).response
          .token,
      );
    const rootToken = String(
      (await client.unary('etcdserverpb.Auth/Authenticate', { name: 'root', password: rootPassword })).response.token,
    );
    const asRoot = (step: string, method: GrpcMethod, request: WireMessage): Promise<Answer> =>
      record(step, client.unary(method, request, rootToken));
    const first = await login('alice logs in', alicePassword);
    await record('alice reads', client.unary('etcdserverpb.KV/Range', range, first));
    await asRoot('revoke app from alice', 'etcdserverpb.Auth/UserRevokeRole', { name: 'alice', role: 'app' });
    await record('alice reads without the role', client.unary('etcdserverpb.KV/Range', range, first));
    await asRoot('grant app to alice', 'etcdserverpb.Auth/UserGrantRole', { user: 'alice', role: 'app' });
    await record('alice reads with the role back', client.unary('etcdserverpb.KV/Range', range, first));
    await asRoot('revoke allowed/ from app', 'etcdserverpb.Auth/RoleRevokePermission', {
      role: 'app',
      key: bytes('allowed/'),
      rangeEnd: prefixEnd('allowed/'),
    });
    await record('alice reads without the permission', client.unary('etcdserverpb.KV/Range', range, first));
    await asRoot('grant allowed/ to app', 'etcdserverpb.Auth/RoleGrantPermission', grantAllowed);
    await record('alice reads with the permission back', client.unary('etcdserverpb.KV/Range', range, first));
    await asRoot('change alice password', 'etcdserverpb.Auth/UserChangePassword', { name: 'alice', password: 'new' });
    await record('alice reads with the old token', client.unary('etcdserverpb.KV/Range', range, first));
    await login('alice logs in with the old password', alicePassword);
    const second = await login('alice logs in with the new password', 'new');
    await record('alice reads with the new token', client.unary('etcdserverpb.KV/Range', range, second));
    await asRoot('delete role app', 'etcdserverpb.Auth/RoleDelete', { role: 'app' });
    await record('alice reads after her role was deleted', client.unary('etcdserverpb.KV/Range', range, second));
    await asRoot('add role app again', 'etcdserverpb.Auth/RoleAdd', { name: 'app' });
    await asRoot('grant allowed/ to the new app', 'etcdserverpb.Auth/RoleGrantPermission', grantAllowed);
    await record('alice reads once app exists again', client.unary('etcdserverpb.KV/Range', range, second));
    await asRoot('get alice', 'etcdserverpb.Auth/UserGet', { name: 'alice' });
    await asRoot('delete alice', 'etcdserverpb.Auth/UserDelete', { name: 'alice' });
    await record('deleted alice reads with her token', client.unary('etcdserverpb.KV/Range', range, second));
    await login('deleted alice logs in', 'new');
    await asRoot('disable', 'etcdserverpb.Auth/AuthDisable', {});
    await record('read with a dropped token while auth is off', client.unary('etcdserverpb.KV/Range', range, second));
    await record('read with root token while auth is off', client.unary('etcdserverpb.KV/Range', range, rootToken));
    await record('enable again', client.unary('etcdserverpb.Auth/AuthEnable', {}));
    await record('read with the root token from before', client.unary('etcdserverpb.KV/Range', range, rootToken));
    return lines;
  } finally {
    client.close();
  }
}
