import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { encodeFrame } from '../../src/raft/message-codec.js';
import { MessageType } from '../../src/raft/types.js';
import { peerStreamPath } from '../../actors/peer/ws-listener.js';
import {
  appendMessage,
  clusterId,
  connectAll,
  heartbeat,
  sleep,
  snapshotMessage,
  startMember,
  waitFor,
} from './helpers.js';

test('two members exchange batches, one frame per destination per send', async () => {
  const [a, b] = [await startMember(1n), await startMember(2n)];
  try {
    await connectAll([a, b]);
    const batch = [appendMessage(1n, 2n, 10, 64, 256), heartbeat(1n, 2n), appendMessage(1n, 2n, 74, 3, 10)];
    a.transport.send(batch);
    b.transport.send([heartbeat(2n, 1n)]);
    await waitFor(() => b.received.length === 3 && a.received.length === 1, 'both batches delivered');
    assert.deepStrictEqual(b.received, batch);
    assert.equal(b.batches, 1);
    assert.equal(a.transport.stats().framesSent, 1);
    assert.equal(a.received[0]!.type, MessageType.heartbeat);
  } finally {
    await Promise.all([a.transport.close(), b.transport.close()]);
  }
});

test('three members route a mixed batch to each destination', async () => {
  const members = [await startMember(1n), await startMember(2n), await startMember(3n)];
  const [a, b, c] = members as [(typeof members)[0], (typeof members)[0], (typeof members)[0]];
  try {
    await connectAll(members);
    a.transport.send([
      heartbeat(1n, 2n),
      heartbeat(1n, 3n),
      appendMessage(1n, 2n, 1),
      appendMessage(1n, 3n, 1),
      snapshotMessage(1n, 3n, 100_000),
    ]);
    await waitFor(() => b.received.length === 2 && c.received.length === 3, 'messages routed');
    assert.equal(a.transport.stats().framesSent, 2);
    assert.equal(c.received[2]!.snapshot?.data.length, 100_000);
    await waitFor(() => a.snapshotStatus.length === 1, 'snapshot status reported');
    assert.deepStrictEqual(a.snapshotStatus, [{ id: 3n, ok: true }]);
    c.transport.send([heartbeat(3n, 1n), heartbeat(3n, 2n)]);
    await waitFor(() => a.received.length === 1 && b.received.length === 3, 'replies routed');
  } finally {
    await Promise.all(members.map((member) => member.transport.close()));
  }
});

test('messages to a peer that is down are dropped and reported unreachable', async () => {
  const a = await startMember(1n);
  try {
    a.transport.addPeer(2n, ['http://127.0.0.1:1']); // nothing listens on port 1
    a.transport.send([heartbeat(1n, 2n), snapshotMessage(1n, 2n, 10), heartbeat(1n, 9n)]);
    assert.deepStrictEqual(a.unreachable, [], 'callbacks never run inside send');
    await sleep(5);
    assert.deepStrictEqual(a.unreachable, [2n]);
    assert.deepStrictEqual(a.snapshotStatus, [{ id: 2n, ok: false }]);
    assert.equal(a.transport.stats().messagesDropped, 3);
    await waitFor(() => a.log.has('failed to dial remote peer'), 'dial failure logged');
  } finally {
    await a.transport.close();
  }
});

test('a member reconnects after its peer restarts on the same address', async () => {
  const a = await startMember(1n);
  let b = await startMember(2n);
  try {
    await connectAll([a, b]);
    const address = b.url;
    await b.transport.close();
    await waitFor(() => a.transport.activePeers().length === 0, 'link seen down');
    a.transport.send([heartbeat(1n, 2n)]);
    await sleep(5);
    assert.deepStrictEqual(a.unreachable, [2n]);
    b = await startMember(2n, { listenUrl: address });
    b.transport.addPeer(1n, [a.url]);
    await waitFor(() => a.transport.activePeers().length === 1, 'link redialed');
    a.transport.send([appendMessage(1n, 2n, 5)]);
    await waitFor(() => b.received.length === 1, 'message after reconnect');
    assert.ok(a.log.has('peer became inactive'));
  } finally {
    await Promise.all([a.transport.close(), b.transport.close()]);
  }
});

test('a peer of another cluster is refused with cluster ID mismatch on both sides', async () => {
  const a = await startMember(1n);
  const stranger = await startMember(2n, { clusterId: 0xbadn });
  try {
    a.transport.addPeer(2n, [stranger.url]);
    stranger.transport.addPeer(1n, [a.url]);
    await waitFor(
      () =>
        a.log.has('request cluster ID mismatch') &&
        stranger.log.has('ignored by remote peer due to cluster ID mismatch'),
      'refusal logged',
    );
    await sleep(100);
    assert.deepStrictEqual(a.transport.activePeers(), []);
    assert.deepStrictEqual(stranger.transport.activePeers(), []);
    stranger.transport.send([heartbeat(2n, 1n)]);
    await sleep(5);
    assert.deepStrictEqual(stranger.unreachable, [1n]);
    assert.equal(a.received.length, 0);
  } finally {
    await Promise.all([a.transport.close(), stranger.transport.close()]);
  }
});

test('an unknown or removed member is refused at the upgrade', async () => {
  const a = await startMember(1n);
  const b = await startMember(2n);
  try {
    b.transport.addPeer(1n, [a.url]); // a does not know b
    await waitFor(() => b.log.has('error sender not found'), 'unknown sender refused');
    a.transport.addPeer(2n, [b.url]);
    await waitFor(() => b.transport.activePeers().length === 1, 'accepted once known');
    a.transport.removePeer(2n);
    await waitFor(() => b.log.has('permanently removed'), 'removed member refused');
    assert.deepStrictEqual(b.transport.activePeers(), []);
  } finally {
    await Promise.all([a.transport.close(), b.transport.close()]);
  }
});

test('a forged or oversized frame closes the stream and never reaches the handler', async () => {
  const a = await startMember(1n, { limits: { frameBytesMax: 64 * 1024 } });
  const b = await startMember(2n);
  try {
    await connectAll([a, b]);
    const headers = { 'X-Server-From': '2', 'X-Etcd-Cluster-ID': clusterId.toString(16), 'X-Raft-To': '1' };
    const closes: { code: number; reason: string }[] = [];
    for (const payload of [
      Buffer.from('not a frame'),
      encodeFrame({ clusterId: 0xbadn, senderId: 2n }, [heartbeat(2n, 1n)]),
    ]) {
      const raw = new WebSocket(`${a.url.replace('http', 'ws')}${peerStreamPath}`, { headers });
      await new Promise((resolve) => raw.once('open', resolve));
      raw.send(payload);
      closes.push(
        await new Promise((resolve) =>
          raw.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
        ),
      );
    }
    assert.equal(closes[0]!.code, 4002);
    assert.match(closes[0]!.reason, /malformed peer frame: 11 bytes is shorter than the 40-byte header/);
    assert.deepStrictEqual(closes[1], { code: 4001, reason: 'request cluster ID mismatch' });
    await waitFor(() => b.transport.activePeers().length === 1, 'b still linked');
    b.transport.send([appendMessage(2n, 1n, 1, 1, 128 * 1024)]);
    await waitFor(() => b.log.has('peer became inactive'), 'oversized frame closed the link');
    assert.equal(a.received.length, 0);
    assert.equal(a.transport.stats().framesRefused, 2);
  } finally {
    await Promise.all([a.transport.close(), b.transport.close()]);
  }
});

test("messages are dropped and reported while a peer's buffer is over its bound", async () => {
  const a = await startMember(1n, { limits: { bufferedBytesMax: 256 * 1024 } });
  const b = await startMember(2n);
  try {
    await connectAll([a, b]);
    for (let i = 0; i < 600; i++) a.transport.send([appendMessage(1n, 2n, i * 64, 64, 256)]);
    await sleep(5);
    assert.ok(a.unreachable.length > 0, 'some sends reported unreachable');
    assert.ok(a.transport.stats().messagesDropped > 0);
    const sent = a.transport.stats().messagesSent;
    await waitFor(() => b.received.length === sent, 'everything sent arrives');
  } finally {
    await Promise.all([a.transport.close(), b.transport.close()]);
  }
});
