/**
 * The alarms a member serves come from its backend: the key space opens them from the backend it
 * starts with, and installing a snapshot (whose database is the leader's backend file, alarm area
 * included) replaces them with the snapshot's.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeySpace } from '../../actors/member/key-space.js';
import { AlarmType } from '../../src/alarm/alarm-store.js';
import { loadConfig } from '../../src/config/config.js';
import { LmdbBackend } from '../../src/mvcc/lmdb-backend.js';

const dir = mkdtempSync(join(tmpdir(), 'tsetcd-key-space-alarms-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test("installing a snapshot's database replaces the alarms with the snapshot's", async () => {
  const { config } = loadConfig({ argv: ['--data-dir', join(dir, 'member')], env: {} });
  const leaderDb = join(dir, 'leader-db');
  const leader = LmdbBackend.open(leaderDb);
  const corrupt = { memberId: 0n, alarm: AlarmType.corrupt };
  leader.write({
    puts: [],
    deletes: [],
    meta: { consistentIndex: 10, term: 2 },
    alarms: { puts: [corrupt], deletes: [] },
  });
  await leader.close();

  const ownDb = join(dir, 'own-db');
  const own = LmdbBackend.open(ownDb);
  const noSpace = { memberId: 7n, alarm: AlarmType.noSpace };
  own.write({ puts: [], deletes: [], meta: { consistentIndex: 3, term: 1 }, alarms: { puts: [noSpace], deletes: [] } });
  await own.close();

  const keySpace = KeySpace.open(ownDb, config, 10);
  assert.deepEqual(keySpace.alarms.get(AlarmType.none), [noSpace], 'opened from its own backend');
  const replaced = keySpace.replaceBackend(leaderDb);
  await replaced.close();
  assert.deepEqual(keySpace.alarms.get(AlarmType.none), [corrupt], "the snapshot's alarms, and only those");
  await keySpace.backend.close();
});
