/**
 * Keeps the load generator from rotting: a short put, range and txn-put run against real etcd (and the
 * system under test when it is built), and a --rate run with both load generators. Only correctness
 * of the tool is asserted, never timing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { goLoadAvailable, runGoLoad } from '../../bench/go-client.js';
import {
  consecutiveKeys,
  loadOptions,
  reportedPercentiles,
  runLoad,
  formatLoadResult,
  type LoadOptions,
  type LoadResult,
} from '../../bench/load.js';
import { decodeReply, encodePutRequest, encodeRangeRequest, encodeTxnPutRequest } from '../../bench/kv-client.js';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

const sut = sutCommand();
const targets: Array<{ label: string; command?: MemberCommand; skip?: string }> = [
  { label: 'etcd', command: etcdCommand() },
  sut.command === undefined
    ? { label: 'tsetcd', skip: sut.skipReason }
    : { label: sut.command.label, command: sut.command },
];

test('the bench protobuf encoders write the fields etcd expects', () => {
  assert.deepEqual([...encodePutRequest(Buffer.from('k'), Buffer.from('v'))], [0x0a, 1, 0x6b, 0x12, 1, 0x76]);
  assert.deepEqual([...encodeRangeRequest(Buffer.from('k'), true)], [0x0a, 1, 0x6b, 0x38, 1]);
  // TxnRequest{success: [RequestOp{request_put: PutRequest{key, value}}] per key}
  const txn = encodeTxnPutRequest([Buffer.from('a'), Buffer.from('b')], Buffer.from('v'));
  assert.deepEqual(
    [...txn],
    [0x12, 8, 0x12, 6, 0x0a, 1, 0x61, 0x12, 1, 0x76, 0x12, 8, 0x12, 6, 0x0a, 1, 0x62, 0x12, 1, 0x76],
  );
  // RangeResponse{header{revision: 300}, count: 2}
  assert.deepEqual(decodeReply(Buffer.from([0x0a, 3, 0x18, 0xac, 0x02, 0x20, 2])), { revision: 300, count: 2 });
  // TxnResponse{header{revision: 7}, succeeded: true, responses: [ResponseOp{response_put: {}}]}
  assert.deepEqual(decodeReply(Buffer.from([0x0a, 2, 0x18, 7, 0x10, 1, 0x1a, 2, 0x12, 0])), { revision: 7, count: 0 });
});

test('the keys of one txn-put are distinct consecutive indexes that wrap at the key space', () => {
  assert.deepEqual(consecutiveKeys(97, 5, 100, 3).map(String), ['097', '098', '099', '000', '001']);
  assert.throws(
    () => loadOptions({ endpoints: ['e'], op: 'txn-put', txnOps: 101, keySpace: 100 }),
    /--txn-ops must be in 1\.\.100/,
  );
  assert.throws(
    () => loadOptions({ endpoints: ['e'], op: 'txn-put', txnOps: 2, keySpace: 1000, keySize: 2 }),
    /fit in --key-size 2/,
  );
});

/** Checks the latency list is at the reported percentiles, never decreasing, and agrees with latencyUs. */
function assertPercentiles(result: LoadResult): void {
  const points = result.latencyPercentilesUs;
  assert.deepEqual(
    points.map((p) => p.percentile),
    [...reportedPercentiles],
  );
  for (let i = 1; i < points.length; i += 1) {
    assert.ok(
      (points[i]?.us ?? -1) >= (points[i - 1]?.us ?? 0),
      `expected latencies never to decrease, saw ${JSON.stringify(points)}`,
    );
  }
  assert.equal(points.find((p) => p.percentile === 50)?.us, result.latencyUs.p50);
  assert.ok(
    result.requests === 0 || (points.at(-1)?.us ?? 0) > 0,
    `expected a slowest latency, saw ${JSON.stringify(points)}`,
  );
}

/** Checks a run measured no more requests than the --rate in `options` allows over its duration. */
function assertWithinRate(result: LoadResult, options: LoadOptions): void {
  // Measured requests are those whose paced slot falls in the window, and slots are 1/rate apart.
  const allowed = Math.ceil((options.ratePerSec * options.durationMs) / 1000) + 1;
  const sent = result.requests + result.errorCount;
  assert.ok(
    sent > 0 && sent <= allowed,
    `expected 1..${allowed} requests at --rate ${options.ratePerSec} over ${options.durationMs} ms, saw ${sent}`,
  );
  assert.equal(result.ratePerSec, options.ratePerSec);
  assertPercentiles(result);
}

for (const target of targets) {
  test(
    `the load generators complete short put, range, txn-put and paced runs against ${target.label}`,
    target.skip === undefined ? {} : { skip: target.skip },
    async (t) => {
      const member = await Member.start({ command: target.command as MemberCommand });
      try {
        const base = {
          endpoints: [member.clientUrl],
          conns: 2,
          clients: 8,
          durationMs: 700,
          warmupMs: 200,
          keySpace: 100,
        };
        const put = await runLoad(loadOptions({ ...base, op: 'put', sequentialKeys: true }));
        assert.ok(put.requests > 0 && put.errorCount === 0, `expected puts without errors:\n${formatLoadResult(put)}`);
        assert.ok(put.lastRevision > put.requests, `expected revisions past ${put.requests}, saw ${put.lastRevision}`);
        assertPercentiles(put);
        for (const consistency of ['l', 's'] as const) {
          const range = await runLoad(loadOptions({ ...base, op: 'range', consistency }));
          assert.ok(
            range.requests > 0 && range.errorCount === 0,
            `expected ranges without errors:\n${formatLoadResult(range)}`,
          );
        }
        // Random starts near the end of the key space make some txns wrap around to key 0.
        const txnPut = await runLoad(loadOptions({ ...base, op: 'txn-put', txnOps: 8 }));
        assert.ok(
          txnPut.requests > 0 && txnPut.errorCount === 0,
          `expected txn-puts without errors:\n${formatLoadResult(txnPut)}`,
        );
        assert.ok(
          txnPut.lastRevision > put.lastRevision,
          `expected revisions past ${put.lastRevision}, saw ${txnPut.lastRevision}`,
        );
        const counted = await runLoad(loadOptions({ ...base, op: 'put', total: 50, warmupMs: 0, durationMs: 10_000 }));
        assert.equal(counted.requests, 50);
        // Serializable ranges from 8 clients run far above 50/s unpaced, so an ignored --rate shows.
        const paced = loadOptions({ ...base, op: 'range', consistency: 's', ratePerSec: 50, durationMs: 600 });
        const writes: string[] = [];
        assertWithinRate(await runLoad(paced, { write: (text: string) => writes.push(text) }), paced);
        assert.ok(
          writes.length >= 2 && writes.slice(0, -1).every((w) => w.startsWith('\r') && w.includes('req/s')),
          `expected progress lines, saw ${JSON.stringify(writes)}`,
        );
        assert.equal(writes.at(-1), '\r\x1b[K', 'expected the progress line cleared at the end');
        const goLoad = goLoadAvailable();
        if (goLoad.ok) assertWithinRate(await runGoLoad(paced, goLoad.binary), paced);
        else t.diagnostic(`the Go load generator was not run: ${goLoad.reason}`);
      } finally {
        await member.destroy();
      }
    },
  );
}
