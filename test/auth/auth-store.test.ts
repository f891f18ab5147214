import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AuthStore, type TokenHooks } from '../../src/auth/auth-store.js';
import { checkTxn } from '../../src/auth/enforce.js';
import { PermissionType, type AuthInfo, type AuthRequest } from '../../src/auth/types.js';
import { SimpleTokens } from '../../src/auth/simple-tokens.js';
import { decodeProposal, encodeProposal, proposalOrigin } from '../../src/api/proposal-codec.js';
import type { TxnRequest } from '../../src/api/types.js';

const bytes = (text: string) => new TextEncoder().encode(text);
const none = new Uint8Array(0);
const fromKey = new Uint8Array([0]);

function hooks(): TokenHooks & { log: string[] } {
  const log: string[] = [];
  return {
    log,
    assign: (name, token, index) => (log.push(`assign ${name}`), `${token}.${index}`),
    invalidateUser: (name) => void log.push(`invalidate ${name}`),
    enable: () => void log.push('enable'),
    disable: () => void log.push('disable'),
  };
}

/** A store with root (root role) and alice holding role r with the given permissions, auth enabled. */
function storeWith(...perms: { permType: PermissionType; key: string; rangeEnd: Uint8Array }[]): AuthStore {
  const store = new AuthStore();
  const tokens = hooks();
  let index = 1;
  const run = (request: AuthRequest) => store.apply(request, undefined, index++, tokens);
  run({ method: 'userAdd', name: 'root', hashedPassword: 'h', noPassword: false });
  run({ method: 'userGrantRole', user: 'root', role: 'root' });
  run({ method: 'userAdd', name: 'alice', hashedPassword: 'h', noPassword: false });
  run({ method: 'roleAdd', name: 'r' });
  for (const perm of perms)
    run({
      method: 'roleGrantPermission',
      name: 'r',
      perm: { permType: perm.permType, key: bytes(perm.key), rangeEnd: perm.rangeEnd },
    });
  run({ method: 'userGrantRole', user: 'alice', role: 'r' });
  run({ method: 'authEnable' });
  return store;
}

const alice = (store: AuthStore): AuthInfo => ({ username: 'alice', revision: store.revision });

test('every change bumps the auth revision, which starts at 1; auth enable keeps it, as etcd', () => {
  const store = new AuthStore();
  assert.equal(store.revision, 1);
  const tokens = hooks();
  store.apply({ method: 'userAdd', name: 'root', hashedPassword: 'h', noPassword: false }, undefined, 1, tokens);
  assert.equal(store.revision, 2);
  assert.throws(() => store.apply({ method: 'authEnable' }, undefined, 2, tokens), /root user does not have root role/);
  store.apply({ method: 'userGrantRole', user: 'root', role: 'root' }, undefined, 3, tokens);
  assert.equal(store.revision, 3);
  const { changed } = store.apply({ method: 'authEnable' }, undefined, 4, tokens);
  assert.equal(changed, true);
  assert.equal(store.revision, 3);
  assert.equal(store.enabled, true);
});

test('enabling auth needs a root user holding the root role', () => {
  const store = new AuthStore();
  assert.throws(
    () => store.apply({ method: 'authEnable' }, undefined, 1, hooks()),
    /etcdserver: root user does not exist/,
  );
});

test('management needs the root role once auth is enabled; a user may read itself', () => {
  const store = storeWith();
  const tokens = hooks();
  assert.throws(() => store.apply({ method: 'userList' }, alice(store), 9, tokens), /etcdserver: permission denied/);
  assert.throws(() => store.apply({ method: 'userList' }, undefined, 9, tokens), /etcdserver: user name is empty/);
  assert.deepEqual(store.apply({ method: 'userGet', name: 'alice' }, alice(store), 9, tokens).response, {
    roles: ['r'],
  });
  assert.deepEqual(store.apply({ method: 'roleGet', role: 'r' }, alice(store), 9, tokens).response, { perm: [] });
  const root = { username: 'root', revision: store.revision };
  assert.deepEqual(store.apply({ method: 'userList' }, root, 9, tokens).response, { users: ['alice', 'root'] });
  assert.throws(() => store.apply({ method: 'userDelete', name: 'root' }, root, 9, tokens), /invalid auth management/);
});

test('a key permission allows that key only; a range permission [key, end); a from-key permission every key after', () => {
  const store = storeWith(
    { permType: PermissionType.read, key: 'a', rangeEnd: none },
    { permType: PermissionType.write, key: 'm', rangeEnd: bytes('p') },
    { permType: PermissionType.readwrite, key: 'x', rangeEnd: fromKey },
  );
  const who = alice(store);
  store.checkRange(who, bytes('a'), none);
  assert.throws(() => store.checkWrite(who, bytes('a'), none), /permission denied/);
  assert.throws(() => store.checkRange(who, bytes('ab'), none), /permission denied/);
  store.checkWrite(who, bytes('n'), none);
  store.checkWrite(who, bytes('m'), bytes('p'));
  assert.throws(() => store.checkWrite(who, bytes('m'), bytes('q')), /permission denied/);
  assert.throws(() => store.checkRange(who, bytes('n'), none), /permission denied/);
  store.checkRange(who, bytes('zzz'), none);
  store.checkWrite(who, bytes('x'), fromKey);
  assert.throws(() => store.checkRange(who, bytes('w'), fromKey), /permission denied/);
});

test('permissions of several roles merge: adjacent ranges cover a request spanning both', () => {
  const store = storeWith(
    { permType: PermissionType.read, key: 'a', rangeEnd: bytes('c') },
    { permType: PermissionType.readwrite, key: 'c', rangeEnd: bytes('e') },
  );
  store.checkRange(alice(store), bytes('b'), bytes('d'));
  assert.throws(() => store.checkRange(alice(store), bytes('b'), bytes('f')), /permission denied/);
});

test('a stale auth revision and an unknown user are refused as etcd refuses them', () => {
  const store = storeWith({ permType: PermissionType.read, key: 'a', rangeEnd: none });
  assert.throws(
    () => store.checkRange({ username: 'alice', revision: store.revision - 1 }, bytes('a'), none),
    /revision of auth store is old/,
  );
  assert.throws(
    () => store.checkRange({ username: 'bob', revision: store.revision }, bytes('a'), none),
    /permission denied/,
  );
  assert.throws(() => store.checkRange(undefined, bytes('a'), none), /user name is empty/);
  store.checkRange({ username: 'root', revision: store.revision }, bytes('anything'), fromKey);
});

test('a txn needs read on its compares and what each op (nested ones too) needs', () => {
  const store = storeWith({ permType: PermissionType.readwrite, key: 'a', rangeEnd: none });
  const leases = { keysOf: () => [] };
  const put = (key: string) => ({
    type: 'put' as const,
    put: { key: bytes(key), value: none, lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false },
  });
  const nested = (key: string): TxnRequest => ({
    compare: [],
    success: [{ type: 'txn', txn: { compare: [], success: [put(key)], failure: [] } }],
    failure: [],
  });
  checkTxn(store, alice(store), nested('a'), leases);
  assert.throws(() => checkTxn(store, alice(store), nested('b'), leases), /permission denied/);
});

test('the auth store comes back whole from its encoding', () => {
  const store = storeWith({ permType: PermissionType.readwrite, key: 'k', rangeEnd: fromKey });
  const copy = AuthStore.decode(store.encode());
  assert.equal(copy.enabled, true);
  assert.equal(copy.revision, store.revision);
  copy.checkWrite(alice(copy), bytes('kz'), none);
  assert.deepEqual(copy.listUsers(), store.listUsers());
});

test('simple tokens expire a TTL after their last use, and disabling auth drops them all', () => {
  let now = 1_000;
  const tokens = new SimpleTokens(300, () => now);
  const token = tokens.assign('alice', 'abc', 7);
  assert.equal(token, 'abc.7');
  now += 200;
  assert.deepEqual(tokens.info(token, 5), { username: 'alice', revision: 5 });
  now += 200;
  assert.equal(tokens.info(token, 5)?.username, 'alice');
  now += 301;
  assert.equal(tokens.info(token, 5), undefined);
  tokens.assign('bob', 'xyz', 8);
  tokens.disable();
  assert.equal(tokens.info('xyz.8', 5), undefined);
});

test('a write proposal carries its caller in a wrapper that keeps its origin readable', () => {
  const envelope = {
    origin: 42n,
    id: 9,
    body: { type: 'deleteRange' as const, deleteRange: { key: bytes('k'), rangeEnd: none, prevKv: true } },
    caller: { username: 'alicé', revision: 12 },
  };
  const data = encodeProposal(envelope);
  assert.equal(proposalOrigin(data), 42n);
  const decoded = decodeProposal(data);
  assert.deepEqual(decoded.caller, envelope.caller);
  assert.equal(decoded.id, 9);
  assert.equal(decoded.body.type, 'deleteRange');
  const plain = encodeProposal({ origin: 42n, id: 9, body: envelope.body });
  assert.equal(decodeProposal(plain).caller, undefined);
  assert.equal(data.length - plain.length, 1 + 2 + 6 + 8);
});
