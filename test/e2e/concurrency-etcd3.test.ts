/**
 * The concurrency API against a member process: the npm `etcd3` client's lock, election and STM
 * recipes (built on KV, Watch and Lease), and etcd's own Lock and Election gRPC services. Real
 * etcd runs alongside the system under test, which proves the expectations.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd3, EtcdLockFailedError, type Campaign, type ElectionObserver } from 'etcd3';
import type { WireMessage } from '../../src/api/proto-wire.js';
import { RecipeClients, stillPending, type CallOutcome } from '../concurrency/host.js';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

/** Every wait for a recipe to make progress gives up after this long. */
const progressWaitMsMax = 8_000;
/** How long each lock holder keeps the lock, long enough for the other to try meanwhile. */
const lockHoldMs = 150;
/** Pause before trying a taken lock again. */
const lockRetryMs = 20;
/** STM increments: workers run concurrently, each doing its increments one after another. */
const stmWorkers = 4;
const stmIncrementsPerWorker = 5;

const sut = sutCommand();
const targets: Array<{ label: string; command?: MemberCommand; skip?: string }> = [
  { label: 'etcd', command: etcdCommand() },
  sut.command === undefined
    ? { label: 'tsetcd', skip: sut.skipReason }
    : { label: sut.command.label, command: sut.command },
];

// etcd's member and tsetcd's run side by side on their own ports: neither needs the other.
describe('locks, elections and STM on etcd and on tsetcd, side by side', { concurrency: true }, () => {
  for (const target of targets) {
    test(
      `locks, elections and STM behave like etcd against ${target.label}`,
      target.skip === undefined ? {} : { skip: target.skip },
      async (t) => {
        const member = await Member.start({ command: target.command as MemberCommand });
        const clients = [new Etcd3({ hosts: member.clientUrl }), new Etcd3({ hosts: member.clientUrl })] as const;
        const services = new RecipeClients(member.clientUrl.replace(/^http:\/\//, ''));
        try {
          await recipeChecks(t, clients);
          await serviceChecks(t, clients[0], services);
        } finally {
          services.close();
          for (const client of clients) client.close();
          await member.destroy();
        }
      },
    );
  }
});

async function waitFor(ready: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + progressWaitMsMax;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Lock attempts that found the lock taken, counted per check so each target's run stands alone. */
interface Contention {
  failedAttempts: number;
}

/**
 * The etcd3 lock fails at once when the lock is taken (it does not queue like etcd's own recipe),
 * so callers retry; bounded by the usual wait.
 */
async function lockedDo<T>(client: Etcd3, name: string, contention: Contention, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + progressWaitMsMax;
  for (;;) {
    try {
      return await client.lock(name).ttl(5).do(fn);
    } catch (error) {
      if (!(error instanceof EtcdLockFailedError) || Date.now() > deadline) throw error;
      contention.failedAttempts += 1;
      await sleep(lockRetryMs);
    }
  }
}

async function recipeChecks(t: TestContext, [first, second]: readonly [Etcd3, Etcd3]): Promise<void> {
  await t.test('two concurrent lockers of the same name hold the lock one after the other', async () => {
    const log: string[] = [];
    const contention: Contention = { failedAttempts: 0 };
    const hold = (who: string) => async () => {
      log.push(`${who} in`);
      await sleep(lockHoldMs);
      log.push(`${who} out`);
      return who;
    };
    const results = await Promise.all([
      lockedDo(first, 'x', contention, hold('a')),
      lockedDo(second, 'x', contention, hold('b')),
    ]);
    assert.deepEqual(results, ['a', 'b']);
    assert.equal(log.length, 4);
    assert.ok(contention.failedAttempts > 0, 'the later locker should have found the lock taken at least once');
    for (let i = 0; i < log.length; i += 2)
      assert.equal(log[i]?.replace(' in', ' out'), log[i + 1], `overlapping holders: ${log.join(', ')}`);
    assert.deepEqual(await first.getAll().prefix('x').keys(), [], 'released locks leave no keys behind');
  });

  await t.test('an election has one leader at a time, observers follow it, and resign hands over', async () => {
    const one = first.election('e', 5).campaign('one');
    let oneElected = false;
    one.on('elected', () => (oneElected = true));
    let two: Campaign | undefined;
    let observer: ElectionObserver | undefined;
    const changes: Array<string | undefined> = [];
    try {
      await waitFor(() => oneElected, 'the first candidate to be elected');
      // Observing starts once there is a leader: the etcd3 observer, when it starts without one,
      // takes the last of several catch-up puts as leader, which would make this check racy.
      observer = await second.election('e', 5).observe();
      observer.on('change', (value) => changes.push(value));
      assert.equal(observer.leader(), 'one');
      two = second.election('e', 5).campaign('two');
      let twoElected = false;
      two.on('elected', () => (twoElected = true));
      await sleep(200);
      assert.equal(twoElected, false, 'a second candidate must wait for the first');
      assert.equal(await first.election('e').leader(), 'one');
      await one.proclaim('one again');
      assert.equal(await first.election('e').leader(), 'one again');
      await waitFor(
        () => changes.includes('one again'),
        `the observer to see the proclaimed value (saw ${JSON.stringify(changes)})`,
      );
      await one.resign();
      await waitFor(() => twoElected, 'the second candidate to be elected');
      await waitFor(
        () => changes.includes('two'),
        `the observer to see the new leader (saw ${JSON.stringify(changes)})`,
      );
      assert.equal(await first.election('e').leader(), 'two');
      assert.deepEqual(
        changes.filter((value) => value !== undefined),
        ['one again', 'two'],
      );
    } finally {
      await Promise.all([one.resign(), two?.resign(), observer?.cancel()]);
    }
  });

  await t.test('concurrent STM increments of one counter lose no update', async () => {
    const increment = (client: Etcd3) =>
      client.stm({ retries: 100 }).transact(async (tx) => {
        const current = Number((await tx.get('counter').string()) ?? '0');
        await tx.put('counter').value(String(current + 1));
      });
    await Promise.all(
      Array.from({ length: stmWorkers }, async (_, worker) => {
        for (let i = 0; i < stmIncrementsPerWorker; i += 1) await increment(worker % 2 === 0 ? first : second);
      }),
    );
    assert.equal(await first.get('counter').string(), String(stmWorkers * stmIncrementsPerWorker));
  });
}

function ok(outcome: CallOutcome): Record<string, any> {
  assert.ok(outcome.ok, `expected success, got ${JSON.stringify(outcome)}`);
  return outcome.response as Record<string, any>;
}

function text(value: unknown): string {
  return Buffer.from(value as Uint8Array).toString('latin1');
}

async function serviceChecks(t: TestContext, client: Etcd3, services: RecipeClients): Promise<void> {
  await t.test('the Lock service names the lock key after the lease and makes a second locker wait', async () => {
    const [leaseA, leaseB] = await Promise.all([
      client.leaseClient.leaseGrant({ TTL: 30 }),
      client.leaseClient.leaseGrant({ TTL: 30 }),
    ]);
    const held = ok(await services.call(services.lock, 'Lock', { name: Buffer.from('svc'), lease: leaseA.ID }));
    assert.equal(text(held.key), `svc/${BigInt(leaseA.ID).toString(16)}`);
    const waiting = services.call(services.lock, 'Lock', { name: Buffer.from('svc'), lease: leaseB.ID });
    assert.equal(await stillPending(waiting, 300), true, 'the second Lock must wait');
    const unlocked = ok(await services.call(services.lock, 'Unlock', { key: held.key }));
    const second = ok(await waiting);
    assert.equal(text(second.key), `svc/${BigInt(leaseB.ID).toString(16)}`);
    assert.ok(Number(second.header.revision) > Number(unlocked.header.revision) - 1);
    ok(await services.call(services.lock, 'Unlock', { key: second.key }));
    const missing = await services.call(services.lock, 'Lock', { name: Buffer.from('svc'), lease: '12345' });
    // etcd's Lock service passes this error on as gRPC Unknown, not NotFound as the Lease service does.
    assert.deepEqual(missing, { ok: false, code: 2, details: 'etcdserver: requested lease not found' });
  });

  await t.test('the Election service campaigns, proclaims, reports and streams the leader, and resigns', async () => {
    const lease = await client.leaseClient.leaseGrant({ TTL: 30 });
    const none = await services.call(services.election, 'Leader', { name: Buffer.from('svc-e') });
    assert.deepEqual(none, { ok: false, code: 2, details: 'election: no leader' });
    const observed = services.observe('svc-e');
    const campaign = ok(
      await services.call(services.election, 'Campaign', {
        name: Buffer.from('svc-e'),
        lease: lease.ID,
        value: Buffer.from('v1'),
      }),
    );
    const leader = campaign.leader as WireMessage;
    assert.equal(text(leader.key), `svc-e/${BigInt(lease.ID).toString(16)}`);
    assert.equal(leader.lease, lease.ID);
    ok(await services.call(services.election, 'Proclaim', { leader, value: Buffer.from('v2') }));
    const current = ok(await services.call(services.election, 'Leader', { name: Buffer.from('svc-e') }));
    assert.equal(text(current.kv.value), 'v2');
    await waitFor(
      () => observed.responses.some((r) => text((r.kv as WireMessage).value) === 'v2'),
      'Observe to stream the proclaimed value',
    );
    assert.deepEqual(
      observed.responses.map((r) => text((r.kv as WireMessage).value)),
      ['v1', 'v2'],
    );
    ok(await services.call(services.election, 'Resign', { leader }));
    const after = await services.call(services.election, 'Leader', { name: Buffer.from('svc-e') });
    assert.deepEqual(after, { ok: false, code: 2, details: 'election: no leader' });
    observed.stream.cancel();
  });
}
