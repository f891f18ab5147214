import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LeaseExpiryLoop } from '../../actors/client/grpc/lease-service.js';
import { errors } from '../../src/api/errors.js';
import { Lessor } from '../../src/lease/lessor.js';
import { leaseRevokesPendingMax } from '../../src/lib/limits.js';
import { MemoryBackend } from '../../src/mvcc/backend.js';

/** Lets every settled promise callback run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('LeaseExpiryLoop', () => {
  it('revokes expired leases with a bounded number in flight and skips rounds while busy', async () => {
    const lessor = Lessor.open(new MemoryBackend(), { minTtlSeconds: 1 });
    lessor.promote(0, 0);
    for (let id = 1n; id <= 40n; id++) lessor.applyGrant(id, 5, 0);
    const waiting: { id: bigint; done: () => void }[] = [];
    let asked = 0;
    const loop = new LeaseExpiryLoop({
      expired: (nowMs, max) => {
        asked++;
        return lessor.expiredLeases(nowMs, max);
      },
      revoke: (id) =>
        new Promise<void>((resolve) => waiting.push({ id, done: () => (lessor.applyRevoke(id), resolve()) })),
      onError: (id, error) => assert.fail(`unexpected failure of ${id}: ${String(error)}`),
      now: () => 10_000,
    });
    loop.check();
    assert.equal(waiting.length, leaseRevokesPendingMax);
    assert.equal(loop.pending, 40);
    loop.check();
    assert.equal(asked, 1);
    for (let round = 0; round < 10 && waiting.length > 0; round++) {
      for (const item of waiting.splice(0)) item.done();
      await settle();
    }
    assert.deepEqual([loop.pending, lessor.size], [0, 0]);
  });

  it('ignores a lease revoked already and reports other failures', async () => {
    const failures: bigint[] = [];
    const loop = new LeaseExpiryLoop({
      expired: () => [1n, 2n],
      revoke: (id) => Promise.reject(id === 1n ? errors.leaseNotFound() : errors.noLeader()),
      onError: (id) => failures.push(id),
    });
    loop.check();
    await settle();
    assert.deepEqual(failures, [2n]);
  });
});
