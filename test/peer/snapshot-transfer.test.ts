import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import type { Message } from '../../src/raft/types.js';
import { MessagePortTransport } from '../../actors/peer/port-transport.js';
import {
  readSnapshotHeader,
  snapshotPath,
  snapshotStreamHeader,
  storeSnapshotDb,
  type SnapshotBody,
} from '../../actors/peer/snapshot-transfer.js';
import { clusterId, connectAll, snapshotMessage, startMember, type TestMember } from './helpers.js';

/** A sink that stores the database into `dir` the way a member does, and records the message. */
function storingSink(dir: string, taken: Message[]): (message: Message, body: SnapshotBody) => Promise<void> {
  return async (message, body) => {
    await storeSnapshotDb(body, join(dir, 'received.snap.db'));
    taken.push(message);
  };
}

function withDir<T>(use: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'tsetcd-snap-'));
  return use(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

test('a snapshot and its 3 MiB database go over the peer port and arrive byte for byte', () =>
  withDir(async (dir) => {
    const [a, b] = [await startMember(1n), await startMember(2n)];
    try {
      await connectAll([a, b]);
      const database = randomBytes(3 * 1024 * 1024 + 17);
      writeFileSync(join(dir, 'sent.db'), database);
      const taken: Message[] = [];
      b.transport.onSnapshot(storingSink(dir, taken));
      const message = snapshotMessage(1n, 2n, 2000);
      await a.transport.sendSnapshot(message, join(dir, 'sent.db'));
      assert.deepStrictEqual(taken, [message]);
      assert.ok(
        readFileSync(join(dir, 'received.snap.db')).equals(database),
        'the stored database equals the one sent',
      );
    } finally {
      await Promise.all([a.transport.close(), b.transport.close()]);
    }
  }));

test('a snapshot the receiver cannot store is reported as failed to the sender and leaves no file', () =>
  withDir(async (dir) => {
    const [a, b] = [await startMember(1n), await startMember(2n)];
    try {
      await connectAll([a, b]);
      writeFileSync(join(dir, 'sent.db'), randomBytes(1000));
      b.transport.onSnapshot(async (_message, body) => {
        await storeSnapshotDb(body, join(dir, 'received.snap.db'), 100);
      });
      await assert.rejects(
        a.transport.sendSnapshot(snapshotMessage(1n, 2n, 10), join(dir, 'sent.db')),
        /answered the snapshot with 400: snapshot database exceeds 100 bytes/,
      );
      assert.deepStrictEqual(readdirSync(dir), ['sent.db']);
    } finally {
      await Promise.all([a.transport.close(), b.transport.close()]);
    }
  }));

test('the peer port refuses a snapshot from a sender it does not know, before reading it', async () => {
  const b: TestMember = await startMember(2n);
  let sinkCalls = 0;
  b.transport.onSnapshot(async () => {
    sinkCalls += 1;
  });
  try {
    const frame = Buffer.from(snapshotStreamHeader(new Uint8Array(8)));
    const response = await fetch(`${b.url}${snapshotPath}`, {
      method: 'POST',
      headers: { 'X-Etcd-Cluster-ID': clusterId.toString(16), 'X-Server-From': '9' },
      body: frame,
    });
    assert.equal(response.status, 404);
    assert.equal((await response.text()).trim(), 'error sender not found');
    const foreign = await fetch(`${b.url}${snapshotPath}`, {
      method: 'POST',
      headers: { 'X-Etcd-Cluster-ID': 'bad', 'X-Server-From': '1' },
      body: frame,
    });
    assert.equal(foreign.status, 412);
    assert.equal(sinkCalls, 0);
  } finally {
    await b.transport.close();
  }
});

test('members on MessagePorts pass a snapshot as a file on the shared disk', () =>
  withDir(async (dir) => {
    const a = new MessagePortTransport({ localId: 1n, clusterId });
    const b = new MessagePortTransport({ localId: 2n, clusterId });
    const channel = new MessageChannel();
    a.addPeer(2n, channel.port1);
    b.addPeer(1n, channel.port2);
    try {
      const database = randomBytes(64 * 1024);
      writeFileSync(join(dir, 'sent.db'), database);
      const taken: Message[] = [];
      b.onSnapshot(storingSink(dir, taken));
      const message = snapshotMessage(1n, 2n, 100);
      await a.sendSnapshot(message, join(dir, 'sent.db'));
      assert.deepStrictEqual(taken, [message]);
      assert.ok(readFileSync(join(dir, 'received.snap.db')).equals(database));
      b.onSnapshot(() => Promise.reject(new Error('disk full')));
      await assert.rejects(a.sendSnapshot(message, join(dir, 'sent.db')), /disk full/);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  }));

test('a snapshot stream header splits from the database whatever the chunking', async () => {
  const frame = randomBytes(300);
  const stream = Buffer.concat([snapshotStreamHeader(frame), Buffer.from('database bytes')]);
  for (const size of [1, 3, 4, 5, 303, 304, 1000]) {
    const chunks = Array.from({ length: Math.ceil(stream.length / size) }, (_, i) =>
      stream.subarray(i * size, (i + 1) * size),
    );
    const { frame: read, rest } = await readSnapshotHeader(
      (async function* () {
        yield* chunks;
      })(),
      1024,
    );
    assert.ok(Buffer.from(read).equals(frame), `frame with ${size}-byte chunks`);
    const tail: Buffer[] = [];
    for await (const chunk of rest) tail.push(Buffer.from(chunk));
    assert.equal(Buffer.concat(tail).toString(), 'database bytes', `rest with ${size}-byte chunks`);
  }
  await assert.rejects(
    readSnapshotHeader(
      (async function* () {
        yield stream.subarray(0, 10);
      })(),
      1024,
    ),
    /ended inside its header/,
  );
  await assert.rejects(
    readSnapshotHeader(
      (async function* () {
        yield stream;
      })(),
      100,
    ),
    /exceeds 100/,
  );
});
