/**
 * Keeps the load generator from rotting: a short put and range run against real etcd (and the
 * system under test when it is built). Only correctness of the tool is asserted, never timing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadOptions, runLoad, formatLoadResult } from '../../bench/load.js';
import { decodeReply, encodePutRequest, encodeRangeRequest } from '../../bench/kv-client.js';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

const sut = sutCommand();
const targets: Array<{ label: string; command?: MemberCommand; skip?: string }> = [
  { label: 'etcd', command: etcdCommand() },
  sut.command === undefined ? { label: 'tsetcd', skip: sut.skipReason } : { label: sut.command.label, command: sut.command },
];

test('the bench protobuf encoders write the fields etcd expects', () => {
  assert.deepEqual([...encodePutRequest(Buffer.from('k'), Buffer.from('v'))], [0x0a, 1, 0x6b, 0x12, 1, 0x76]);
  assert.deepEqual([...encodeRangeRequest(Buffer.from('k'), true)], [0x0a, 1, 0x6b, 0x38, 1]);
  // RangeResponse{header{revision: 300}, count: 2}
  assert.deepEqual(decodeReply(Buffer.from([0x0a, 3, 0x18, 0xac, 0x02, 0x20, 2])), { revision: 300, count: 2 });
});

for (const target of targets) {
  test(`the load generator completes short put and range runs against ${target.label}`, target.skip === undefined ? {} : { skip: target.skip }, async () => {
    const member = await Member.start({ command: target.command as MemberCommand });
    try {
      const base = { endpoints: [member.clientUrl], conns: 2, clients: 8, durationMs: 700, warmupMs: 200, keySpace: 100 };
      const put = await runLoad(loadOptions({ ...base, op: 'put', sequentialKeys: true }));
      assert.ok(put.requests > 0 && put.errorCount === 0, `expected puts without errors:\n${formatLoadResult(put)}`);
      assert.ok(put.lastRevision > put.requests, `expected revisions past ${put.requests}, saw ${put.lastRevision}`);
      for (const consistency of ['l', 's'] as const) {
        const range = await runLoad(loadOptions({ ...base, op: 'range', consistency }));
        assert.ok(range.requests > 0 && range.errorCount === 0, `expected ranges without errors:\n${formatLoadResult(range)}`);
      }
      const counted = await runLoad(loadOptions({ ...base, op: 'put', total: 50, warmupMs: 0, durationMs: 10_000 }));
      assert.equal(counted.requests, 50);
    } finally {
      await member.destroy();
    }
  });
}
