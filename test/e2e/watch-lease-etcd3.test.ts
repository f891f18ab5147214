/**
 * The npm `etcd3` client's Watch and Lease APIs against a member process. Real etcd runs
 * alongside the system under test, which proves the expectations are etcd's behaviour.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd3, type IKeyValue, type Watcher } from 'etcd3';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

/** Every wait for an event gives up after this long. */
const eventWaitMsMax = 8_000;
/** Short TTL for expiry checks; etcd's minimum TTL with default flags is about 1.5 s. */
const shortTtlSec = 2;

const sut = sutCommand();
const targets: Array<{ label: string; command?: MemberCommand; skip?: string }> = [
  { label: 'etcd', command: etcdCommand() },
  sut.command === undefined
    ? { label: 'tsetcd', skip: sut.skipReason }
    : { label: sut.command.label, command: sut.command },
];

// etcd's member and tsetcd's run side by side on their own ports: neither needs the other.
describe("the etcd3 client's watch and lease APIs on etcd and on tsetcd, side by side", { concurrency: true }, () => {
  for (const target of targets) {
    test(
      `the etcd3 client's watch and lease APIs behave like etcd against ${target.label}`,
      target.skip === undefined ? {} : { skip: target.skip },
      async (t) => {
        const member = await Member.start({ command: target.command as MemberCommand });
        const client = new Etcd3({ hosts: member.clientUrl });
        try {
          await watchChecks(t, client);
          await leaseChecks(t, client);
        } finally {
          client.close();
          await member.destroy();
        }
      },
    );
  }
});

/** One event as a watcher saw it, in a form that compares well. */
interface SeenEvent {
  readonly type: 'put' | 'delete';
  readonly key: string;
  readonly value: string;
  readonly modRevision: string;
  readonly previous: string | undefined;
}

/** Records a watcher's put and delete events in arrival order. */
function record(watcher: Watcher): SeenEvent[] {
  const seen: SeenEvent[] = [];
  const push = (type: SeenEvent['type']) => (kv: IKeyValue, previous?: IKeyValue) =>
    seen.push({
      type,
      key: kv.key.toString(),
      value: kv.value.toString(),
      modRevision: kv.mod_revision,
      previous: previous?.value.toString(),
    });
  watcher.on('put', push('put')).on('delete', push('delete'));
  return seen;
}

async function waitFor(ready: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + eventWaitMsMax;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Runs in order on a fresh member, so revisions are predictable: the first write is revision 2. */
async function watchChecks(t: TestContext, client: Etcd3): Promise<void> {
  await t.test('a live watcher sees puts and deletes made after it was created, in order', async () => {
    const watcher = await client.watch().key('live').withPreviousKV().create();
    const seen = record(watcher);
    await client.put('live').value('1');
    await client.put('live').value('2');
    await client.put('other').value('x');
    await client.delete().key('live');
    await waitFor(() => seen.length >= 3, 'three events on "live"');
    await watcher.cancel();
    assert.deepEqual(seen, [
      { type: 'put', key: 'live', value: '1', modRevision: '2', previous: undefined },
      { type: 'put', key: 'live', value: '2', modRevision: '3', previous: '1' },
      { type: 'delete', key: 'live', value: '', modRevision: '5', previous: '2' },
    ]);
  });

  await t.test('a watcher from a past revision replays history, then follows new writes', async () => {
    const watcher = await client.watch().prefix('l').startRevision('3').create();
    const seen = record(watcher);
    await client.put('lx').value('new');
    await waitFor(() => seen.length >= 3, 'history and one new event');
    await watcher.cancel();
    assert.deepEqual(
      seen.map((e) => `${e.type} ${e.key}@${e.modRevision}`),
      ['put live@3', 'delete live@5', 'put lx@6'],
    );
  });

  await t.test('watchers filter by operation and each response carries a header revision', async () => {
    const puts = await client.watch().key('f').only('put').create();
    const deletes = await client.watch().key('f').only('delete').create();
    const seenPuts = record(puts);
    const seenDeletes = record(deletes);
    const headers: string[] = [];
    puts.on('data', (response) => headers.push(response.header.revision));
    await client.put('f').value('1');
    await client.delete().key('f');
    await waitFor(() => seenPuts.length >= 1 && seenDeletes.length >= 1, 'one put and one delete');
    await Promise.all([puts.cancel(), deletes.cancel()]);
    assert.deepEqual(
      seenPuts.map((e) => e.type),
      ['put'],
    );
    assert.deepEqual(
      seenDeletes.map((e) => `${e.type}@${e.modRevision}`),
      ['delete@8'],
    );
    assert.deepEqual(headers, ['7']);
  });

  await t.test('a watcher from a compacted revision is canceled by the server', async () => {
    await client.kv.compact({ revision: '6', physical: true });
    const watcher = client.watch().key('live').startRevision('2').watcher();
    const failure = await new Promise<Error>((resolve) => watcher.on('error', resolve));
    // etcd 3.4 sets compact_revision but no cancel_reason, so the client's message ends there.
    assert.equal(failure.message, 'Watcher canceled: ');
    const fine = await client.watch().key('lx').startRevision('6').create();
    const seen = record(fine);
    await waitFor(() => seen.length >= 1, 'the event at the compaction revision');
    await fine.cancel();
    assert.deepEqual(
      seen.map((e) => `${e.key}@${e.modRevision}`),
      ['lx@6'],
    );
  });
}

async function leaseChecks(t: TestContext, client: Etcd3): Promise<void> {
  await t.test('a granted lease holds keys, reports them with its TTL, and revoking deletes them', async () => {
    const lease = client.lease(600, { autoKeepAlive: false });
    const id = await lease.grant();
    await lease.put('held/1').value('a');
    await lease.put('held/2').value('b');
    const ttl = await client.leaseClient.leaseTimeToLive({ ID: id, keys: true });
    assert.equal(ttl.grantedTTL, '600');
    assert.ok(Number(ttl.TTL) > 590 && Number(ttl.TTL) <= 600, `expected about 600 s left, saw ${ttl.TTL}`);
    assert.deepEqual(ttl.keys.map((key) => key.toString()).sort(), ['held/1', 'held/2']);
    const listed = await client.leaseClient.leaseLeases({});
    assert.ok(
      listed.leases.some((l) => l.ID === id),
      `expected lease ${id} in ${JSON.stringify(listed.leases)}`,
    );
    const once = await lease.keepaliveOnce();
    assert.deepEqual([once.ID, once.TTL], [id, '600']);
    await lease.revoke();
    assert.deepEqual(await client.getAll().prefix('held/').keys(), []);
    const gone = await client.leaseClient.leaseTimeToLive({ ID: id, keys: false });
    assert.equal(gone.TTL, '-1');
    await assert.rejects(client.leaseClient.leaseRevoke({ ID: id }), /requested lease not found/);
  });

  await t.test("keep-alives keep a short lease's key while an unrenewed lease expires and takes its key", async () => {
    const kept = client.lease(shortTtlSec);
    const dropped = client.lease(shortTtlSec, { autoKeepAlive: false });
    let renewals = 0;
    kept.on('keepaliveSucceeded', () => (renewals += 1));
    await kept.put('kept').value('1');
    await dropped.put('dropped').value('1');
    const deadline = Date.now() + eventWaitMsMax;
    while ((await client.get('dropped').string()) !== null && Date.now() < deadline) await sleep(200);
    assert.equal(await client.get('dropped').string(), null, 'the unrenewed lease should expire and delete its key');
    assert.equal(await client.get('kept').string(), '1');
    assert.ok(renewals >= 2, `expected at least two keep-alives, saw ${renewals}`);
    await kept.revoke();
    dropped.release();
  });

  await t.test('a kept-alive lease revoked by someone else is reported lost', async () => {
    const lease = client.lease(shortTtlSec);
    const id = await lease.grant();
    const lost = new Promise<Error>((resolve) => lease.on('lost', resolve));
    await client.leaseClient.leaseRevoke({ ID: id });
    const error = await Promise.race([lost, sleep(eventWaitMsMax).then(() => new Error('no lost event'))]);
    assert.ok(error.message !== 'no lost event', 'expected the lease to be reported lost');
    lease.release();
  });
}
