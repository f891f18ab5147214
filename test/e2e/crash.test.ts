/**
 * Durability under kill -9: concurrent writers put unique keys, the member is killed mid-stream
 * and restarted on the same data dir, and every acknowledged put must be readable with its
 * value. Three crashes per member; real etcd runs alongside to prove the test itself.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';
import { KvConnection } from '../../bench/kv-client.js';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

const writersCount = 16;
const crashRounds = 3;
/**
 * How long writers run at least before the kill. The kill also waits for a first acknowledged put:
 * on a loaded machine the first puts after a restart can take longer than this.
 */
const killAfterMs = 700;
/** Bound on puts per writer per round, in case the server is very fast. */
const putsPerWriterMax = 5_000;
const putDeadlineMs = 5_000;

const sut = sutCommand();
const targets: Array<{ label: string; command?: MemberCommand; skip?: string }> = [
  { label: 'etcd', command: etcdCommand() },
  sut.command === undefined
    ? { label: 'tsetcd', skip: sut.skipReason }
    : { label: sut.command.label, command: sut.command },
];

/** Default settings, and a snapshot every 100 entries so restarts also go through snapshots and a WAL tail. */
const flagSets: Array<{ label: string; flags: string[] }> = [
  { label: '', flags: [] },
  { label: ' with --snapshot-count 100', flags: ['--snapshot-count', '100'] },
];

// etcd's member and tsetcd's run side by side on their own ports: neither needs the other.
describe('kill -9 on etcd and on tsetcd, side by side', { concurrency: true }, () => {
  for (const target of targets) {
    const options = target.skip === undefined ? {} : { skip: target.skip };
    // Each system's tests one after another: a suite's concurrency is inherited otherwise.
    describe(`kill -9 of ${target.label}`, { ...options, concurrency: 1 }, () => {
      for (const flagSet of flagSets) {
        test(
          `every acknowledged put survives kill -9 and restart of ${target.label}${flagSet.label}, ${crashRounds} times`,
          options,
          async (t) => {
            const member = await Member.start({ command: target.command as MemberCommand, extraFlags: flagSet.flags });
            const acknowledged = new Map<string, string>();
            try {
              for (let round = 1; round <= crashRounds; round += 1) {
                const ackedThisRound = await writeUntilKilled(member, round, acknowledged);
                assert.ok(
                  ackedThisRound > 0,
                  `round ${round}: expected some acknowledged puts before the kill, saw none`,
                );
                t.diagnostic(`crash ${round}: ${ackedThisRound} puts acknowledged before kill -9`);
                await member.restart();
                await assertAllPresent(member, acknowledged, round);
              }
            } finally {
              await member.destroy();
            }
          },
        );
      }
    });
  }
});

/** Runs the writers, kills the member after `killAfterMs`, and returns how many puts were acknowledged. */
async function writeUntilKilled(member: Member, round: number, acknowledged: Map<string, string>): Promise<number> {
  const connection = new KvConnection(member.clientUrl);
  let stopped = false;
  let acked = 0;
  let firstAcknowledged: () => void = () => undefined;
  const someAcknowledged = new Promise<void>((resolve) => (firstAcknowledged = resolve));
  const writer = async (writerIndex: number): Promise<void> => {
    for (let seq = 0; seq < putsPerWriterMax && !stopped; seq += 1) {
      const key = `crash/r${round}/w${String(writerIndex).padStart(2, '0')}/${String(seq).padStart(5, '0')}`;
      const value = `value-${round}-${writerIndex}-${seq}-${'x'.repeat(seq % 64)}`;
      try {
        await connection.put(Buffer.from(key), Buffer.from(value), putDeadlineMs);
      } catch {
        return; // The member is gone; this put may or may not have landed, so it is not acknowledged.
      }
      acknowledged.set(key, value);
      acked += 1;
      firstAcknowledged();
    }
  };
  const writers = Array.from({ length: writersCount }, (_, i) => writer(i));
  // Writers that all failed end too, so this cannot wait forever; the caller then sees no puts acknowledged.
  await Promise.all([sleep(killAfterMs), Promise.race([someAcknowledged, Promise.all(writers)])]);
  await member.kill9();
  stopped = true;
  await Promise.all(writers);
  connection.close();
  return acked;
}

async function assertAllPresent(
  member: Member,
  acknowledged: ReadonlyMap<string, string>,
  round: number,
): Promise<void> {
  const client = new Etcd3({ hosts: member.clientUrl });
  try {
    const stored = await client.getAll().prefix('crash/').strings();
    const missing: string[] = [];
    for (const [key, value] of acknowledged)
      if (stored[key] !== value) missing.push(`${key}: expected ${value}, saw ${String(stored[key])}`);
    assert.equal(
      missing.length,
      0,
      `after crash ${round}, ${missing.length} of ${acknowledged.size} acknowledged puts are missing or wrong:\n${missing.slice(0, 10).join('\n')}`,
    );
  } finally {
    client.close();
  }
}
