/**
 * The npm `etcd3` client's KV API against the system under test. The same checks run against
 * real etcd first, which proves the expectations themselves are etcd's behaviour.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

const sut = sutCommand();
const targets: Array<{ label: string; command?: MemberCommand; skip?: string }> = [
  { label: 'etcd', command: etcdCommand() },
  sut.command === undefined
    ? { label: 'tsetcd', skip: sut.skipReason }
    : { label: sut.command.label, command: sut.command },
];

for (const target of targets) {
  test(
    `the etcd3 client's KV API behaves like etcd against ${target.label}`,
    target.skip === undefined ? {} : { skip: target.skip },
    async (t) => {
      const member = await Member.start({ command: target.command as MemberCommand });
      const client = new Etcd3({ hosts: member.clientUrl });
      try {
        await kvChecks(t, client);
      } finally {
        client.close();
        await member.destroy();
      }
    },
  );
}

/** Runs in order on a fresh member, so revisions are predictable: the first write is revision 2. */
async function kvChecks(t: TestContext, client: Etcd3): Promise<void> {
  await t.test('put returns the new revision and, on request, the previous pair', async () => {
    const first = await client.put('a').value('1');
    assert.equal(first.header.revision, '2');
    const second = await client.put('a').value('2').getPrevious();
    assert.equal(second?.value.toString(), '1');
    assert.equal(second?.mod_revision, '2');
  });

  await t.test('get returns the value and its create revision, mod revision and version', async () => {
    assert.equal(await client.get('a').string(), '2');
    const response = await client.get('a').exec();
    const kv = response.kvs[0];
    assert.equal(response.header.revision, '3');
    assert.deepEqual([kv?.create_revision, kv?.mod_revision, kv?.version], ['2', '3', '2']);
    assert.equal(await client.get('missing').string(), null);
    assert.equal(await client.get('a').revision(2).string(), '1');
  });

  await t.test('getAll with a prefix lists keys in order, counts and limits', async () => {
    for (const [key, value] of [
      ['p/3', 'c'],
      ['p/1', 'a'],
      ['p/2', 'b'],
      ['pq', 'x'],
    ])
      await client.put(key as string).value(value as string);
    assert.deepEqual(await client.getAll().prefix('p/').strings(), { 'p/1': 'a', 'p/2': 'b', 'p/3': 'c' });
    assert.deepEqual(await client.getAll().prefix('p/').keys(), ['p/1', 'p/2', 'p/3']);
    assert.equal(await client.getAll().prefix('p').count(), 4);
    assert.deepEqual(await client.getAll().prefix('p/').sort('Key', 'Descend').limit(2).keys(), ['p/3', 'p/2']);
    assert.deepEqual(await client.getAll().prefix('p/').sort('Mod', 'Ascend').keys(), ['p/3', 'p/1', 'p/2']);
  });

  await t.test('delete removes one key or a prefix and reports how many', async () => {
    const one = await client.delete().key('pq');
    assert.equal(one.deleted, '1');
    assert.equal(one.header.revision, '8');
    const none = await client.delete().key('pq');
    assert.equal(none.deleted, '0');
    const prefix = await client.delete().prefix('p/').getPrevious();
    assert.deepEqual(
      prefix.map((kv) => kv.key.toString()),
      ['p/1', 'p/2', 'p/3'],
    );
    assert.equal(await client.getAll().prefix('p').count(), 0);
  });

  await t.test('if/then/else transactions take the branch their compares select', async () => {
    const taken = await client
      .if('a', 'Value', '==', '2')
      .then(client.put('a').value('3'))
      .else(client.put('a').value('never'))
      .commit();
    assert.equal(taken.succeeded, true);
    assert.equal(taken.header.revision, '10');
    const other = await client
      .if('a', 'Version', '>', 10)
      .then(client.put('a').value('never'))
      .else(client.get('a'))
      .commit();
    assert.equal(other.succeeded, false);
    assert.equal(other.responses[0]?.response_range?.kvs[0]?.value.toString(), '3');
    const absent = await client
      .if('b', 'Create', '==', 0)
      .and('a', 'Mod', '==', 10)
      .then(client.put('b').value('new'))
      .commit();
    assert.equal(absent.succeeded, true);
    assert.equal(await client.get('b').string(), 'new');
    assert.equal(absent.header.revision, '11');
  });

  await t.test('a lease compare matches the lease a key was put with', async () => {
    const lease = client.lease(600, { autoKeepAlive: false });
    const leaseId = await lease.grant();
    await lease.put('leased').value('v');
    const matched = await client.if('leased', 'Lease', '==', leaseId).then(client.get('leased')).commit();
    assert.equal(matched.succeeded, true);
    const unmatched = await client.if('leased', 'Lease', '==', 0).then(client.get('leased')).commit();
    assert.equal(unmatched.succeeded, false);
    await lease.revoke();
    assert.equal(await client.get('leased').string(), null);
  });

  await t.test("reading a future revision is rejected with etcd's error text", async () => {
    await assert.rejects(client.get('a').revision(1_000).string(), /required revision is a future revision/);
  });
}
