/**
 * The power-loss journal and power cut on the WAL alone, in this process: what the WAL synced
 * survives every cut, and a WAL that skips fdatasync (--unsafe-no-fsync) is caught losing entries.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { journaledWalFiles } from '../../actors/wal/power-loss-journal.js';
import { WalCorruptionError } from '../../src/wal/reader.js';
import { Wal, walSegmentBytesMin, type WalOptions } from '../../src/wal/wal.js';
import { powerCut, type PowerCutOptions } from '../support/power-cut.js';
import { makeEntries, tempDir, testMetadata } from './helpers.js';

const batchesCount = 60;
const entriesPerBatch = 5;
/** Small segments, so the run cuts several (create, rename, directory fsync). */
const segmentBytes = walSegmentBytesMin * 4;

interface CutOutcome {
  syncedIndex: number;
  /** The indexes the reopened WAL holds, or undefined when it refused to open. */
  indexes: number[] | undefined;
  /** Why the WAL refused to open: damage it found in bytes that were never synced. */
  refusal?: string;
}

/**
 * Appends batches to a journaled WAL, syncing after each but the last few, then cuts power with
 * `cut` and reopens: returns the last index synced and the indexes the WAL holds after the cut. A
 * WAL that refuses to open is an outcome only when the damage it names lies past the synced data.
 */
function writeAndCut(walOptions: WalOptions, cut: Pick<PowerCutOptions, 'seed' | 'mode'>): CutOutcome {
  const { dir, cleanup } = tempDir();
  try {
    const walDir = join(dir, 'wal');
    const journalDir = join(dir, 'journal');
    mkdirSync(journalDir);
    const files = journaledWalFiles(walDir, journalDir);
    const wal = Wal.create(walDir, testMetadata, { ...walOptions, segmentBytes, files });
    const data = new Map<number, Uint8Array>();
    let syncedIndex = 0;
    for (let batch = 0; batch < batchesCount; batch++) {
      const entries = makeEntries(batch * entriesPerBatch + 1, entriesPerBatch, 1, 64);
      for (const entry of entries) data.set(entry.index, entry.data);
      wal.append(entries, { term: 1, vote: 0n, commit: batch * entriesPerBatch });
      if (batch < batchesCount - 3) {
        wal.sync();
        syncedIndex = entries[entries.length - 1]!.index;
      }
    }
    // No close: the process is killed, its unsynced writes are in the journal only.
    const report = powerCut({ journalDir, walDir, backendPath: join(dir, 'db'), ...cut });
    if (!Wal.exists(walDir)) return { syncedIndex, indexes: [] };
    let opened: ReturnType<typeof Wal.open>;
    try {
      opened = Wal.open(walDir, { segmentBytes, log: () => undefined });
    } catch (error) {
      if (!(error instanceof WalCorruptionError)) throw error;
      const synced = report.syncedDataBytes.get(basename(error.path));
      if (synced === undefined || error.offset < synced) throw error;
      return { syncedIndex, indexes: undefined, refusal: error.message };
    }
    const { wal: reopened, state } = opened;
    reopened.close();
    for (const entry of state.entries) {
      assert.deepEqual(entry.data, data.get(entry.index), `entry ${entry.index} read back with other bytes`);
    }
    return { syncedIndex, indexes: state.entries.map((entry) => entry.index) };
  } finally {
    cleanup();
  }
}

test('every entry the WAL synced survives a power cut, for 20 seeds and with every unsynced change lost', (t) => {
  const cuts: Array<Pick<PowerCutOptions, 'seed' | 'mode'>> = [
    ...Array.from({ length: 20 }, (_, i) => ({ seed: i + 1, mode: 'random' as const })),
    { seed: 0, mode: 'drop-unsynced' },
  ];
  for (const cut of cuts) {
    const { syncedIndex, indexes, refusal } = writeAndCut({}, cut);
    assert.ok(syncedIndex > 0);
    if (indexes === undefined) {
      // A lost write followed by a kept one: the WAL refuses rather than guess (see corruption.test.ts).
      assert.equal(cut.mode, 'random', `${cut.mode} seed ${cut.seed}: refused to open: ${refusal}`);
      t.diagnostic(`${cut.mode} seed ${cut.seed}: refused to open on unsynced damage: ${refusal}`);
      continue;
    }
    const expected = Array.from({ length: indexes.length }, (_, i) => i + 1);
    assert.deepEqual(indexes, expected, `${cut.mode} seed ${cut.seed}: the entries read back are not 1..n`);
    assert.ok(
      indexes.length >= syncedIndex,
      `${cut.mode} seed ${cut.seed}: ${indexes.length} entries survive, ${syncedIndex} were synced`,
    );
  }
});

test('a WAL that skips fdatasync (--unsafe-no-fsync) loses synced entries in the power cut', () => {
  const { syncedIndex, indexes } = writeAndCut({ unsafeNoFsync: true }, { seed: 0, mode: 'drop-unsynced' });
  assert.ok(indexes !== undefined, 'with every unsynced change lost there is nothing torn to refuse');
  assert.ok(
    indexes.length < syncedIndex,
    `expected the cut to lose entries the WAL reported synced; ${indexes.length} of ${syncedIndex} survive`,
  );
});
