/**
 * A member's transport in a worker thread, driven by the test in the main thread: over a
 * MessagePort (the single-host cluster mode) or over ws on loopback. The sender streams appends
 * with a bounded window of unanswered frames; the receiver checks each message and answers every
 * frame with one appResp, as a follower does.
 */
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { MessagePortTransport } from '../../actors/peer/port-transport.js';
import { PeerTransport } from '../../actors/peer/ws-transport.js';
import type { RaftTransport } from '../../actors/peer/links.js';
import { type Message, MessageType, type NodeId } from '../../src/raft/types.js';
import { eventWaitMsMax } from '../support/waits.js';
import { appendMessage } from './helpers.js';

export interface TransportWorkerData {
  kind: 'port' | 'ws';
  localId: NodeId;
  peerId: NodeId;
  clusterId: bigint;
  port?: MessagePort;
}

/** Commands from the test. */
export type WorkerCommand =
  | { type: 'peer'; url: string }
  | {
      type: 'stream';
      durationMs: number;
      messagesPerSend: number;
      entriesPerMessage: number;
      entryBytes: number;
      windowFrames: number;
    }
  | { type: 'close' };

/** Reports to the test. */
export type WorkerReport =
  | { type: 'listening'; url: string }
  | { type: 'linked' }
  | { type: 'received'; messages: number; batches: number; bad: number }
  | { type: 'streamed'; messages: number; frames: number; elapsedMs: number; unreachable: number }
  | { type: 'closed' };

const data = workerData as TransportWorkerData;
const post = (report: WorkerReport) => parentPort?.postMessage(report);
let transport: RaftTransport<never>;
let unreachable = 0;
let answered = 0;
let received = { messages: 0, batches: 0, bad: 0 };

async function main(): Promise<void> {
  if (data.kind === 'port') {
    const portTransport = new MessagePortTransport({ localId: data.localId, clusterId: data.clusterId });
    portTransport.addPeer(data.peerId, data.port as MessagePort);
    transport = portTransport as unknown as RaftTransport<never>;
  } else {
    const wsTransport = new PeerTransport({
      localId: data.localId,
      clusterId: data.clusterId,
      listenUrls: ['http://127.0.0.1:0'],
    });
    transport = wsTransport as unknown as RaftTransport<never>;
    await wsTransport.start();
    post({ type: 'listening', url: wsTransport.listeningUrls()[0] as string });
  }
  transport.onUnreachable(() => (unreachable += 1));
  transport.onMessages(handleMessages);
  await transport.start();
  parentPort?.on('message', (command: WorkerCommand) => void handleCommand(command));
}

function handleMessages(messages: Message[]): void {
  if (messages[0]?.type === MessageType.appResp) {
    answered += 1;
    return;
  }
  received.batches += 1;
  for (const message of messages) {
    received.messages += 1;
    const entry = message.entries[message.entries.length - 1];
    if (message.type !== MessageType.app || entry === undefined || entry.data[0] !== entry.index % 251)
      received.bad += 1;
  }
  const last = messages[messages.length - 1] as Message;
  const reply: Message = {
    ...last,
    type: MessageType.appResp,
    to: last.from,
    from: data.localId,
    entries: [],
    index: last.index + last.entries.length,
  };
  transport.send([reply]);
}

async function handleCommand(command: WorkerCommand): Promise<void> {
  if (command.type === 'peer') {
    (transport as unknown as PeerTransport).addPeer(data.peerId, [command.url]);
    while (transport.activePeers().length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    post({ type: 'linked' });
  } else if (command.type === 'stream') {
    post(await stream(command));
  } else {
    post({ type: 'received', ...received });
    received = { messages: 0, batches: 0, bad: 0 };
    await transport.close();
    post({ type: 'closed' });
  }
}

/**
 * Sends appends for `durationMs`, keeping at most `windowFrames` frames unanswered. The batches are
 * built once and resent, as a leader resends entries it already holds, so the measurement is the
 * transport's and not the cost of making entries.
 */
async function stream(command: Extract<WorkerCommand, { type: 'stream' }>): Promise<WorkerReport> {
  const { messagesPerSend, entriesPerMessage, entryBytes, windowFrames } = command;
  const batches = Array.from({ length: 8 }, (_, batch) =>
    Array.from({ length: messagesPerSend }, (_, position) => {
      const index = (batch * messagesPerSend + position) * entriesPerMessage;
      return appendMessage(data.localId, data.peerId, index, entriesPerMessage, entryBytes);
    }),
  );
  const started = performance.now();
  let frames = 0;
  let messages = 0;
  answered = 0;
  unreachable = 0;
  while (performance.now() - started < command.durationMs) {
    while (frames - answered < windowFrames) {
      transport.send(batches[frames % batches.length] as Message[]);
      frames += 1;
      messages += messagesPerSend;
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  // Every frame answered means the receiver has counted every message the report names.
  const deadline = performance.now() + eventWaitMsMax;
  while (answered < frames && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 1));
  return { type: 'streamed', messages, frames, elapsedMs: performance.now() - started, unreachable };
}

void main();
