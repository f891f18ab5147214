import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import { clusterId } from './helpers.js';
import { startWorker } from './workers.js';

// Measured, not asserted: the machine is shared, so numbers are printed for the report only.
const entryBytes = 256;
const durationMs = 700;
// Unanswered messages the sender allows; a window in frames would starve one-message frames of
// throughput whenever a busy machine stretches the round trip.
const windowMessages = 512;

type Pair = { sender: ReturnType<typeof startWorker>; receiver: ReturnType<typeof startWorker> };

function portPair(): Pair {
  const channel = new MessageChannel();
  return {
    sender: startWorker({ kind: 'port', localId: 1n, peerId: 2n, clusterId, port: channel.port1 }, [channel.port1]),
    receiver: startWorker({ kind: 'port', localId: 2n, peerId: 1n, clusterId, port: channel.port2 }, [channel.port2]),
  };
}

async function wsPair(): Promise<Pair> {
  const sender = startWorker({ kind: 'ws', localId: 1n, peerId: 2n, clusterId });
  const receiver = startWorker({ kind: 'ws', localId: 2n, peerId: 1n, clusterId });
  const [senderUrl, receiverUrl] = [(await sender.next('listening')).url, (await receiver.next('listening')).url];
  sender.send({ type: 'peer', url: receiverUrl });
  receiver.send({ type: 'peer', url: senderUrl });
  await Promise.all([sender.next('linked'), receiver.next('linked')]);
  return { sender, receiver };
}

async function measure(name: string, pair: Pair, messagesPerSend: number, entriesPerMessage: number): Promise<void> {
  try {
    pair.sender.send({
      type: 'stream',
      durationMs,
      messagesPerSend,
      entriesPerMessage,
      entryBytes,
      windowFrames: windowMessages / messagesPerSend,
    });
    const streamed = await pair.sender.next('streamed');
    pair.receiver.send({ type: 'close' });
    const received = await pair.receiver.next('received');
    assert.equal(received.bad, 0);
    assert.equal(received.messages, streamed.messages);
    const seconds = streamed.elapsedMs / 1000;
    const messagesPerSecond = Math.round(streamed.messages / seconds);
    const megabytesPerSecond = ((streamed.messages * entriesPerMessage * entryBytes) / seconds / 1e6).toFixed(0);
    console.log(
      `# ${name}: ${messagesPerSend} msgs/send, ${entriesPerMessage}x${entryBytes} B entries: ` +
        `${messagesPerSecond} messages/s, ${Math.round(streamed.frames / seconds)} batches/s, ` +
        `${Math.round(messagesPerSecond * entriesPerMessage)} entries/s, ${megabytesPerSecond} MB/s of entry data`,
    );
  } finally {
    await Promise.all([pair.sender.worker.terminate(), pair.receiver.worker.terminate()]);
  }
}

test('throughput of the ws and MessagePort transports between two worker threads', async () => {
  // 64 entries per message is the brief's load; one entry per message shows the per-frame cost.
  for (const [messagesPerSend, entriesPerMessage] of [
    [1, 64],
    [16, 64],
    [1, 1],
  ] as const) {
    await measure('ws', await wsPair(), messagesPerSend, entriesPerMessage);
    await measure('MessagePort', portPair(), messagesPerSend, entriesPerMessage);
  }
});
