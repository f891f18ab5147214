/**
 * The authorisation matrix (auth-matrix.ts) on real etcd and on the system under test: every etcd
 * v3 RPC with every class of credentials, compared cell by cell. Where etcd 3.4.23 lets through a
 * call that later etcd releases refuse, the expected cell is the later answer (closedHoles below);
 * with TSETCD_CMD=/usr/bin/etcd the harness compares etcd with etcd as is and checks instead that
 * each of those holes is still open in 3.4.23, so none of them is a guess.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { errors, type EtcdError } from '../../src/api/errors.js';
import { grpcMethods } from '../../src/api/proto-wire.js';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';
import {
  authOffClasses,
  cellKey,
  credentialClasses,
  matrixRows,
  methodsOutsideMatrix,
  rootSetupFailedPrefix,
  runMatrix,
  runTokenLifecycle,
  type AuthMode,
  type CredentialClass,
  type Matrix,
} from './auth-matrix.js';

const sut = sutCommand();
const skipReason = sut.skipReason;
const sutIsEtcd = sut.command?.label === 'etcd-as-sut';

const said = (error: EtcdError): string => `${grpc.status[error.code]} ${error.message}`;
const userEmpty = said(errors.userEmpty());
const invalidToken = said(errors.invalidAuthToken());
const denied = said(errors.permissionDenied());

/** The answers of a check that wants a user (any user): etcd's requireAuthInfo. */
const needsUser: Partial<Record<CredentialClass, string>> = {
  'no credentials': userEmpty,
  'invalid token': invalidToken,
  'stale token': invalidToken,
};
/** The answers of a check that wants root: etcd's IsAdminPermitted. */
const needsRoot: Partial<Record<CredentialClass, string>> = {
  ...needsUser,
  'no permission': denied,
  permission: denied,
};

/**
 * Authorisation holes of etcd 3.4.23 that later releases closed, as the expected cells. Sources:
 * etcd release-3.5 (and the same backports on release-3.4): "guard unauthenticated endpoints with
 * auth checks" (f936af2c, a07ecd12 on main), "allow non-admin to fetch member list and alarms"
 * (cdbfd651), "allow non-admin maintenance status" (c2f6dac8), "enforce auth checks for nested txn
 * ops" (9e430336), "Fix the 'read via PrevKv' and 'Put with lease' in TXN bypass rbac check"
 * (e8ce1ae4). AuthStatus, which later releases add, is not served, as in 3.4 (UNIMPLEMENTED).
 */
const closedHoles: ReadonlyMap<
  string,
  { readonly why: string; readonly cells: Partial<Record<CredentialClass, string>> }
> = new Map([
  ['Compact', { why: 'Compact needs root (kvServer.Compact checks isPermitted)', cells: { ...needsRoot } }],
  ['LeaseGrant', { why: 'LeaseGrant needs a user (requireAuthInfo)', cells: { 'no credentials': userEmpty } }],
  [
    'LeaseRevoke, lease without keys',
    { why: 'LeaseRevoke needs a user (requireAuthInfo)', cells: { 'no credentials': userEmpty } },
  ],
  [
    'LeaseKeepAlive, lease attached to allowed/',
    {
      why: 'renewing needs a user who may write every key of the lease (checkLeaseRenew)',
      cells: { ...needsUser, 'no permission': denied },
    },
  ],
  [
    'LeaseKeepAlive, lease attached to secret/',
    { why: 'renewing needs a user who may write every key of the lease (checkLeaseRenew)', cells: { ...needsRoot } },
  ],
  ['LeaseTimeToLive, no keys', { why: 'LeaseTimeToLive needs a user (requireAuthInfo)', cells: { ...needsUser } }],
  [
    'LeaseTimeToLive keys, lease attached to secret/',
    { why: "listing a lease's keys needs read permission on them (checkLeaseTimeToLive)", cells: { ...needsRoot } },
  ],
  [
    'LeaseLeases (a lease holds a secret/ key)',
    { why: 'LeaseLeases needs read permission on every leased key (checkLeaseLeases)', cells: { ...needsRoot } },
  ],
  ['MemberList', { why: 'MemberList needs a user (requireAuthInfo)', cells: { ...needsUser } }],
  ['Alarm GET', { why: 'listing alarms needs a user (requireAuthInfo)', cells: { ...needsUser } }],
  ['Alarm DEACTIVATE NOSPACE', { why: 'changing alarms needs root (isAuthenticated)', cells: { ...needsRoot } }],
  ['Status', { why: 'Status needs a user (requireAuthInfo)', cells: { ...needsUser } }],
  ['MoveLeader to an unknown member', { why: 'MoveLeader needs root (isAuthenticated)', cells: { ...needsRoot } }],
  [
    'Txn nested txn reads allowed/k',
    {
      why: 'ops of nested txns are checked (checkTxnReqsPermission recurses)',
      cells: { 'no credentials': userEmpty, 'no permission': denied },
    },
  ],
  [
    'Txn nested txn reads secret/k',
    {
      why: 'ops of nested txns are checked (checkTxnReqsPermission recurses)',
      cells: { 'no credentials': userEmpty, 'no permission': denied, permission: denied },
    },
  ],
  [
    'Txn put writeonly/k prev_kv (write-only key)',
    { why: 'a txn put with prev_kv needs read permission (checkPutAuth)', cells: { permission: denied } },
  ],
  [
    'Txn put allowed/x with a lease attached to secret/',
    { why: 'a txn put with a lease needs write permission on its keys (checkPutAuth)', cells: { permission: denied } },
  ],
]);

const rows = matrixRows();

test('the auth matrix calls every etcd v3 RPC tsetcd serves', () => {
  const called = new Set(rows.map((row) => row.method));
  const missing = grpcMethods.filter((method) => !called.has(method) && !methodsOutsideMatrix.has(method));
  assert.deepEqual(missing, [], 'RPCs with no row in the auth matrix');
  for (const name of closedHoles.keys())
    assert.ok(
      rows.some((row) => row.name === name),
      `closedHoles names a row that does not exist: ${name}`,
    );
});

test(
  `every RPC with every kind of credentials answers on ${sut.command?.label ?? 'tsetcd'} as on etcd (auth matrix)`,
  skipReason === undefined ? {} : { skip: skipReason },
  async (t) => {
    const sutSide = sut.command as MemberCommand;
    const [observed, actual] = await Promise.all([runOn(etcdCommand()), runOn(sutSide)]);
    const etcdSetupFailures = [...observed].filter(([, said]) => said.startsWith(rootSetupFailedPrefix));
    assert.deepEqual(etcdSetupFailures, [], 'root could not set up these cells on etcd: the harness is broken');
    const openHoles = stillOpen(observed);
    assert.deepEqual(openHoles.closed, [], 'closedHoles lists cells where etcd 3.4 already answers the later way');
    const expected = sutIsEtcd ? observed : withHolesClosed(observed);
    const mismatches = [...expected].filter(([key, want]) => actual.get(key) !== want);
    t.diagnostic(`${expected.size} cells, ${mismatches.length} differ`);
    assert.ok(mismatches.length === 0, report(mismatches, actual, sutSide.label, expected.size));
  },
);

test(
  `with auth disabled, every RPC answers a token nobody issued on ${sut.command?.label ?? 'tsetcd'} as on etcd`,
  skipReason === undefined ? {} : { skip: skipReason },
  async (t) => {
    const sutSide = sut.command as MemberCommand;
    const [observed, actual] = await Promise.all([runOn(etcdCommand(), 'auth off'), runOn(sutSide, 'auth off')]);
    const expected = new Map(observed);
    const refused = [...observed].filter(([key, said]) => key.endsWith('| invalid token') && !said.startsWith('OK'));
    // The matrix is only worth its cells if etcd refuses the token on some calls and not on others.
    assert.ok(refused.length > 0 && refused.length < observed.size / authOffClasses.length);
    const mismatches = [...expected].filter(([key, want]) => actual.get(key) !== want);
    t.diagnostic(
      `${expected.size} cells, ${refused.length} refusals of the token on etcd, ${mismatches.length} differ`,
    );
    assert.ok(mismatches.length === 0, report(mismatches, actual, sutSide.label, expected.size));
  },
);

async function runOn(command: MemberCommand, mode: AuthMode = 'auth on'): Promise<Matrix> {
  const member = await Member.start({ command });
  try {
    return await runMatrix(member.clientUrl, rows, mode);
  } catch (error) {
    throw new Error(`${command.label}: ${(error as Error).message}\nlog tail:\n${member.logTail()}`);
  } finally {
    await member.destroy();
  }
}

/**
 * Holes of closedHoles where etcd 3.4 already answers every cell the later way (a wrong
 * exception). Some cells of a hole may agree (a bad token was refused before too).
 */
function stillOpen(observed: Matrix): { closed: string[] } {
  const closed = [...closedHoles]
    .filter(([row, hole]) =>
      Object.entries(hole.cells).every(
        ([credentials, want]) => observed.get(cellKey(row, credentials as CredentialClass)) === want,
      ),
    )
    .map(([row]) => row);
  return { closed };
}

function withHolesClosed(observed: Matrix): Matrix {
  const expected = new Map(observed);
  for (const [row, hole] of closedHoles)
    for (const [credentials, want] of Object.entries(hole.cells))
      expected.set(cellKey(row, credentials as CredentialClass), want);
  return expected;
}

/** A table of differing cells; cells the system under test does not implement come first. */
function report(mismatches: ReadonlyArray<[string, string]>, actual: Matrix, label: string, total: number): string {
  const unimplemented = mismatches.filter(([key]) => actual.get(key)?.startsWith('UNIMPLEMENTED') === true);
  const other = mismatches.filter(([key]) => actual.get(key)?.startsWith('UNIMPLEMENTED') !== true);
  const line = ([key, want]: [string, string]): string => {
    const [row = '', credentials = ''] = key.split(' | ');
    const hole = closedHoles.get(row)?.cells[credentials as CredentialClass] === undefined ? '' : ' (later etcd)';
    return `  ${row.padEnd(52)} | ${credentials.padEnd(14)} | want${hole}: ${want}\n  ${''.padEnd(52)} | ${''.padEnd(14)} | ${label}: ${actual.get(key) ?? '(missing)'}`;
  };
  const parts = [`${mismatches.length} of ${total} cells differ (row | credentials | expected / seen)`];
  if (other.length > 0) parts.push(`answered differently (${other.length}):\n${other.map(line).join('\n')}`);
  if (unimplemented.length > 0)
    parts.push(`UNIMPLEMENTED in ${label} (${unimplemented.length}):\n${unimplemented.map(line).join('\n')}`);
  const classes = credentialClasses.join(', ');
  parts.push(`credential classes: ${classes}`);
  return parts.join('\n\n');
}

test(
  `a token in use follows its user's changes on ${sut.command?.label ?? 'tsetcd'} as on etcd`,
  skipReason === undefined ? {} : { skip: skipReason },
  async () => {
    const sutSide = sut.command as MemberCommand;
    const run = async (command: MemberCommand): Promise<string[]> => {
      const member = await Member.start({ command });
      try {
        return await runTokenLifecycle(member.clientUrl);
      } finally {
        await member.destroy();
      }
    };
    const [expected, actual] = await Promise.all([run(etcdCommand()), run(sutSide)]);
    assert.deepEqual(actual, expected, `${sutSide.label} differs from etcd`);
  },
);
