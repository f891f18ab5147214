import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import type { Message, NodeId } from '../../src/raft/types.js';
import { encodeFrame } from '../../src/raft/message-codec.js';
import { MessagePortTransport } from '../../actors/peer/port-transport.js';
import { appendMessage, clusterId, heartbeat, RecordingLog, sleep, snapshotMessage, waitFor } from './helpers.js';
import { startWorker } from './workers.js';

interface PortMember {
  transport: MessagePortTransport;
  received: Message[];
  unreachable: NodeId[];
  snapshotStatus: boolean[];
  log: RecordingLog;
}

function portMember(id: NodeId): PortMember {
  const log = new RecordingLog();
  const member: PortMember = {
    transport: new MessagePortTransport({ localId: id, clusterId, log }),
    received: [],
    unreachable: [],
    snapshotStatus: [],
    log,
  };
  member.transport.onMessages((messages) => member.received.push(...messages));
  member.transport.onUnreachable((peer) => member.unreachable.push(peer));
  member.transport.onSnapshotStatus((_peer, ok) => member.snapshotStatus.push(ok));
  return member;
}

test('two MessagePort transports exchange batches and report snapshot delivery', async () => {
  const [a, b] = [portMember(1n), portMember(2n)];
  const channel = new MessageChannel();
  a.transport.addPeer(2n, channel.port1);
  b.transport.addPeer(1n, channel.port2);
  const batch = [appendMessage(1n, 2n, 1, 64, 256), snapshotMessage(1n, 2n, 4096)];
  a.transport.send(batch);
  b.transport.send([heartbeat(2n, 1n)]);
  await waitFor(() => b.received.length === 2 && a.received.length === 1, 'batches over the channel');
  assert.deepStrictEqual(b.received, batch);
  assert.deepStrictEqual(a.snapshotStatus, [true]);
  assert.deepStrictEqual(a.transport.activePeers(), [2n]);
  await Promise.all([a.transport.close(), b.transport.close()]);
});

test('a closed port makes its peer unreachable', async () => {
  const [a, b] = [portMember(1n), portMember(2n)];
  const channel = new MessageChannel();
  a.transport.addPeer(2n, channel.port1);
  b.transport.addPeer(1n, channel.port2);
  await b.transport.close();
  await waitFor(() => a.transport.activePeers().length === 0, 'close seen');
  a.transport.send([heartbeat(1n, 2n), snapshotMessage(1n, 2n, 1)]);
  await sleep(1);
  assert.deepStrictEqual(a.unreachable, [2n]);
  assert.deepStrictEqual(a.snapshotStatus, [false]);
  await a.transport.close();
});

test('a frame from another cluster closes the port and reaches no handler', async () => {
  const a = portMember(1n);
  const channel = new MessageChannel();
  a.transport.addPeer(2n, channel.port1);
  const frame = encodeFrame({ clusterId: 0xbadn, senderId: 2n }, [heartbeat(2n, 1n)]);
  channel.port2.postMessage(frame.buffer, [frame.buffer]);
  await waitFor(() => a.log.has('request cluster ID mismatch'), 'refusal logged');
  assert.equal(a.received.length, 0);
  assert.deepStrictEqual(a.transport.activePeers(), []);
  channel.port2.close();
  await a.transport.close();
});

test('MessagePortTransport streams appends between two worker threads', async () => {
  const channel = new MessageChannel();
  const sender = startWorker({ kind: 'port', localId: 1n, peerId: 2n, clusterId, port: channel.port1 }, [
    channel.port1,
  ]);
  const receiver = startWorker({ kind: 'port', localId: 2n, peerId: 1n, clusterId, port: channel.port2 }, [
    channel.port2,
  ]);
  try {
    sender.send({
      type: 'stream',
      durationMs: 200,
      messagesPerSend: 4,
      entriesPerMessage: 64,
      entryBytes: 256,
      windowFrames: 16,
    });
    const streamed = await sender.next('streamed');
    receiver.send({ type: 'close' });
    const received = await receiver.next('received');
    assert.ok(streamed.messages > 0);
    assert.equal(streamed.unreachable, 0);
    assert.deepStrictEqual(received, {
      type: 'received',
      messages: streamed.messages,
      batches: streamed.frames,
      bad: 0,
    });
  } finally {
    await Promise.all([sender.worker.terminate(), receiver.worker.terminate()]);
  }
});
