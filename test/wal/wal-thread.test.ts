import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { WalClient } from '../../actors/wal/client.js';
import { readWal } from '../../src/wal/reader.js';
import { Wal } from '../../src/wal/wal.js';
import { makeEntries, tempDir, testMetadata } from './helpers.js';

test('1000 concurrent appends all become durable with far fewer fsyncs (group commit)', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const { client, state, created } = await WalClient.open(dir, { metadata: testMetadata });
    assert.equal(created, true);
    assert.deepEqual(state.entries, []);
    const entries = makeEntries(1, 1000, 2, 64);
    await Promise.all(entries.map((entry) => client.append([entry], { term: 2, vote: 1n, commit: entry.index })));
    const { syncCount, appendCount } = client.stats();
    console.log(`group commit: ${appendCount} appends made durable by ${syncCount} fsyncs`);
    assert.equal(appendCount, 1000);
    assert.ok(syncCount >= 1 && syncCount < 500, `expected far fewer than 1000 fsyncs, got ${syncCount}`);
    await client.close();
    const { wal, state: reopened } = Wal.open(dir);
    wal.close();
    assert.deepEqual(reopened.entries, entries);
    assert.deepEqual(reopened.hardState, { term: 2, vote: 1n, commit: 1000 });
  } finally {
    cleanup();
  }
});

test('the client reopens an existing WAL and reports a repaired torn write through its log', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const wal = Wal.create(dir, testMetadata);
    wal.append(makeEntries(1, 3), { term: 1, vote: 3n, commit: 2 });
    wal.close();
    const path = join(dir, readdirSync(dir)[0]!);
    const fd = openSync(path, 'r+');
    ftruncateSync(fd, readWal(dir).tailOffset - 3);
    closeSync(fd);
    const logs: string[] = [];
    const { client, state, created } = await WalClient.open(dir, {
      metadata: { memberId: 1n, clusterId: 2n },
      log: (message) => logs.push(message),
    });
    assert.equal(created, false);
    assert.deepEqual(state.metadata, testMetadata, 'an existing WAL keeps its metadata');
    assert.deepEqual(state.entries, makeEntries(1, 3));
    assert.deepEqual(state.hardState, { term: 0, vote: 0n, commit: 0 }, 'the hard state was the torn record');
    assert.equal(logs.length, 1);
    assert.match(logs[0]!, /torn write/);
    await client.append(makeEntries(4, 1), { term: 1, vote: 3n, commit: 4 });
    await client.saveSnapshot(3, 1);
    await client.close();
    const { wal: reopened, state: after } = Wal.open(dir);
    reopened.close();
    assert.deepEqual(after.snapshot, { index: 3, term: 1 });
    assert.deepEqual(after.entries, makeEntries(4, 1));
  } finally {
    cleanup();
  }
});

test('releasing through the client deletes segments behind the snapshot', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const { client } = await WalClient.open(dir, { metadata: testMetadata, segmentBytes: 4096 });
    for (let index = 1; index <= 300; index += 10) await client.append(makeEntries(index, 10, 1, 64));
    const before = readdirSync(dir).length;
    await client.saveSnapshot(250, 1);
    await client.releaseTo(250);
    const after = readdirSync(dir).length;
    assert.ok(after < before, `segments ${before} -> ${after}`);
    await client.close();
    const { wal, state } = Wal.open(dir, { segmentBytes: 4096 });
    wal.close();
    assert.deepEqual(state.entries, makeEntries(251, 50, 1, 64));
  } finally {
    cleanup();
  }
});

test('an append the WAL refuses fails it for good and rejects every later request', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const { client } = await WalClient.open(dir, { metadata: testMetadata });
    await client.append(makeEntries(1, 2));
    await assert.rejects(client.append(makeEntries(5, 1)), /WAL thread failed: .*gap/);
    await assert.rejects(client.append(makeEntries(3, 1)), /WAL thread failed/);
    await client.close();
  } finally {
    cleanup();
  }
});

test('opening a corrupt WAL through the client rejects with the file and offset', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const wal = Wal.create(dir, testMetadata);
    wal.append(makeEntries(1, 3));
    wal.close();
    const path = join(dir, readdirSync(dir)[0]!);
    const bytes = readFileSync(path);
    bytes[100] = (bytes[100]! ^ 0xff) & 0xff;
    writeFileSync(path, bytes);
    await assert.rejects(WalClient.open(dir, { metadata: testMetadata }), new RegExp(`${path} at byte offset \\d+`));
  } finally {
    cleanup();
  }
});

test('a commit-only hard state waits for the next append or the close, and is not written alone', async () => {
  const { dir, cleanup } = tempDir();
  const { client } = await WalClient.open(dir, { metadata: testMetadata });
  let closed = false;
  try {
    await client.append(makeEntries(1, 3), { term: 1, vote: 2n, commit: 1 });
    client.writeCommit({ term: 1, vote: 2n, commit: 2 });
    await client.append(makeEntries(4, 1));
    client.writeCommit({ term: 1, vote: 2n, commit: 4 });
    // Everything posted so far is durable: the last commit index is still held by the client.
    const beforeClose = readWal(dir);
    assert.deepEqual(
      beforeClose.state.hardState,
      { term: 1, vote: 2n, commit: 2 },
      'the held commit rode with the append that followed it',
    );
    await client.close();
    closed = true;
    const { wal, state } = Wal.open(dir);
    wal.close();
    assert.deepEqual(state.hardState, { term: 1, vote: 2n, commit: 4 }, 'the close wrote the held commit');
    assert.deepEqual(state.entries, makeEntries(1, 4));
  } finally {
    if (!closed) await client.close();
    cleanup();
  }
});
