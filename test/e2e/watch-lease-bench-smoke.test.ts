/**
 * Keeps the watch fan-out and lease keep-alive benches from rotting: tiny runs against real etcd
 * and the system under test. Only the tools' correctness is asserted, never timing.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { measureWatch, decodeWatchReply } from '../../bench/watch.js';
import { grantedIdVarint, keepAliveTtl, measureLease } from '../../bench/lease.js';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

const sut = sutCommand();
const targets: Array<{ label: string; command?: MemberCommand; skip?: string }> = [
  { label: 'etcd', command: etcdCommand() },
  sut.command === undefined
    ? { label: 'tsetcd', skip: sut.skipReason }
    : { label: sut.command.label, command: sut.command },
];

test('the bench decoders read the watch and lease fields they rely on', () => {
  // WatchResponse{created: true, events: [{kv: {value: "7"}}]}
  assert.deepEqual(decodeWatchReply(Buffer.from([0x18, 1, 0x5a, 5, 0x12, 3, 0x2a, 1, 0x37])), {
    created: true,
    canceled: false,
    values: ['7'],
  });
  // LeaseGrantResponse{ID: 300, TTL: 5}: the id's varint bytes are kept as they are.
  assert.deepEqual([...grantedIdVarint(Buffer.from([0x10, 0xac, 0x02, 0x18, 5]))], [0xac, 0x02]);
  assert.equal(keepAliveTtl(Buffer.from([0x10, 0xac, 0x02, 0x18, 5])), 5);
  assert.equal(keepAliveTtl(Buffer.from([0x10, 0xac, 0x02])), 0);
});

// etcd's member and tsetcd's run side by side on their own ports: neither needs the other.
describe('the watch and lease bench on etcd and on tsetcd, side by side', { concurrency: true }, () => {
  for (const target of targets) {
    test(
      `the watch and lease benches complete short runs against ${target.label}`,
      target.skip === undefined ? {} : { skip: target.skip },
      async () => {
        const member = await Member.start({ command: target.command as MemberCommand });
        try {
          const watch = await measureWatch(member.clientUrl, member.pid, {
            watchers: 200,
            streams: 2,
            puts: 10,
            putIntervalMs: 0,
            timeoutMs: 10_000,
          });
          assert.equal(watch.watchersCreated, 200);
          assert.equal(
            watch.eventsReceived,
            watch.eventsExpected,
            `expected every event delivered: ${JSON.stringify(watch)}`,
          );
          assert.equal(watch.eventsExpected, 2_000);
          const lease = await measureLease(member.clientUrl, { leases: 50, streams: 2, inFlight: 8, durationMs: 500 });
          assert.equal(lease.leasesGranted, 50);
          assert.ok(
            lease.keepAlives > 0 && lease.keepAliveErrors === 0,
            `expected keep-alives without errors: ${JSON.stringify(lease)}`,
          );
        } finally {
          await member.destroy();
        }
      },
    );
  }
});
