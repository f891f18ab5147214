/**
 * What the WAL thread's group commit promises: an append resolves only after an fdatasync that
 * followed it, one awaiting writer gets one fdatasync per append, concurrent appenders share
 * fdatasyncs, and every record written comes back intact and in order after a reopen, across
 * segment files. (How fast it goes is measured by bench/wal-throughput.ts, not asserted here.)
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { WalClient } from '../../actors/wal/client.js';
import type { Entry, HardState } from '../../src/raft/types.js';
import { Wal } from '../../src/wal/wal.js';
import { makeEntries, tempDir, testMetadata } from './helpers.js';

const concurrentAppenders = 64;
const appendsPerAppender = 12;
/** Small segments, so the records run over several segment files. */
const segmentBytes = 64 * 1024;

/** Appends `entries` and checks that its promise resolved only after an fdatasync posted after it. */
async function appendDurably(client: WalClient, entries: Entry[], hardState: HardState): Promise<void> {
  const syncsBefore = client.stats().syncCount;
  await client.append(entries, hardState);
  const syncsAfter = client.stats().syncCount;
  assert.ok(
    syncsAfter > syncsBefore,
    `the append of ${entries[0]?.index}..${entries.at(-1)?.index} resolved with no fdatasync after it (syncs ${syncsBefore} -> ${syncsAfter})`,
  );
}

test('one writer awaiting each append gets one fdatasync per append, and all of it back after reopen', async () => {
  const { dir, cleanup } = tempDir();
  const { client } = await WalClient.open(dir, { metadata: testMetadata });
  let closed = false;
  try {
    const written: Entry[] = [];
    for (let index = 1; index <= 40; index += 2) {
      const entries = makeEntries(index, 2, 3, 100 + index);
      await appendDurably(client, entries, { term: 3, vote: 2n, commit: index + 1 });
      written.push(...entries);
    }
    assert.deepEqual(client.stats(), { syncCount: 20, appendCount: 20 });
    await client.close();
    closed = true;
    const { wal, state } = Wal.open(dir);
    wal.close();
    assert.deepEqual(state.entries, written);
    assert.deepEqual(state.hardState, { term: 3, vote: 2n, commit: 40 });
  } finally {
    if (!closed) await client.close().catch(() => undefined);
    cleanup();
  }
});

test('concurrent appenders share fdatasyncs, and every record comes back intact and in order across segments', async () => {
  const { dir, cleanup } = tempDir();
  const { client } = await WalClient.open(dir, { metadata: testMetadata, segmentBytes });
  let closed = false;
  try {
    const written: Entry[] = [];
    let nextIndex = 1;
    const appender = async (appenderIndex: number): Promise<void> => {
      for (let round = 0; round < appendsPerAppender; round += 1) {
        // Batches of one to three entries of different sizes, some larger than a 4 KiB page.
        const count = 1 + ((appenderIndex + round) % 3);
        const dataBytes = ((appenderIndex * 131 + round * 17) % 40) * 150;
        const entries = makeEntries(nextIndex, count, 2, dataBytes);
        nextIndex += count;
        written.push(...entries);
        await appendDurably(client, entries, { term: 2, vote: 1n, commit: entries.at(-1)!.index });
      }
    };
    await Promise.all(Array.from({ length: concurrentAppenders }, (_, i) => appender(i)));
    const { syncCount, appendCount } = client.stats();
    assert.equal(appendCount, concurrentAppenders * appendsPerAppender);
    assert.ok(
      syncCount < appendCount / 2,
      `group commit should share fdatasyncs between appenders: ${syncCount} fdatasyncs for ${appendCount} appends`,
    );
    await client.close();
    closed = true;
    assert.ok(
      readdirSync(dir).length > 1,
      `expected the records to span segments, found ${readdirSync(dir).join(', ')}`,
    );
    const { wal, state } = Wal.open(dir, { segmentBytes });
    wal.close();
    assert.equal(state.entries.length, written.length);
    assert.deepEqual(state.entries, written, 'records after reopen differ from those written');
    assert.deepEqual(state.hardState, { term: 2, vote: 1n, commit: written.at(-1)!.index });
  } finally {
    if (!closed) await client.close().catch(() => undefined);
    cleanup();
  }
});
