/** Shared fixtures for the peer transport tests: messages, polling, transports (certificates: test/support/tls.ts). */
import { type Entry, EntryType, type Message, MessageType, type NodeId } from '../../src/raft/types.js';
import { PeerTransport, type PeerTransportOptions } from '../../actors/peer/ws-transport.js';
import type { PeerLog } from '../../actors/peer/links.js';
import { eventWaitMsMax } from '../support/waits.js';

export const clusterId = 0xcdf818194e3a8c32n;

/** `count` entries of `dataBytes` bytes each, starting at `firstIndex`. */
export function makeEntries(firstIndex: number, count: number, dataBytes: number): Entry[] {
  return Array.from({ length: count }, (_, offset) => ({
    term: 3,
    index: firstIndex + offset,
    type: EntryType.normal,
    data: new Uint8Array(dataBytes).fill((firstIndex + offset) % 251),
  }));
}

/** An append from `from` to `to` carrying `entryCount` entries. */
export function appendMessage(from: NodeId, to: NodeId, index: number, entryCount = 2, dataBytes = 16): Message {
  return {
    type: MessageType.app,
    to,
    from,
    term: 3,
    logTerm: 3,
    index,
    entries: makeEntries(index + 1, entryCount, dataBytes),
    commit: index,
    reject: false,
    rejectHint: 0,
  };
}

export function heartbeat(from: NodeId, to: NodeId): Message {
  return {
    type: MessageType.heartbeat,
    to,
    from,
    term: 3,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 7,
    reject: false,
    rejectHint: 0,
  };
}

export function snapshotMessage(from: NodeId, to: NodeId, dataBytes: number): Message {
  return {
    type: MessageType.snap,
    to,
    from,
    term: 4,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    snapshot: {
      data: new Uint8Array(dataBytes).fill(7),
      metadata: {
        index: 1200,
        term: 4,
        confState: {
          voters: [from, to],
          learners: [0xffffffffffffffffn],
          votersOutgoing: [],
          learnersNext: [],
          autoLeave: false,
        },
      },
    },
  };
}

/** Polls `predicate` every 10 ms until it holds or `timeoutMs` passes. */
export async function waitFor(predicate: () => boolean, what: string, timeoutMs = eventWaitMsMax): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A log that keeps what was written, for asserting that refusals are logged. */
export class RecordingLog implements PeerLog {
  readonly lines: { level: string; message: string; fields: object }[] = [];
  debug(fields: object, message: string): void {
    this.lines.push({ level: 'debug', message, fields });
  }
  info(fields: object, message: string): void {
    this.lines.push({ level: 'info', message, fields });
  }
  warn(fields: object, message: string): void {
    this.lines.push({ level: 'warn', message, fields });
  }
  has(text: string): boolean {
    return this.lines.some((line) => line.message.includes(text) || JSON.stringify(line.fields).includes(text));
  }
}

/** A started transport plus everything its callbacks saw. */
export interface TestMember {
  id: NodeId;
  transport: PeerTransport;
  log: RecordingLog;
  received: Message[];
  batches: number;
  unreachable: NodeId[];
  snapshotStatus: { id: NodeId; ok: boolean }[];
  url: string;
}

export async function startMember(
  id: NodeId,
  options: Partial<PeerTransportOptions> & { listenUrl?: string } = {},
): Promise<TestMember> {
  const log = new RecordingLog();
  const transport = new PeerTransport({
    localId: id,
    clusterId,
    listenUrls: [options.listenUrl ?? 'http://127.0.0.1:0'],
    log,
    dialBackoffMsDefault: 20,
    dialBackoffMsMax: 200,
    ...options,
  });
  const member: TestMember = {
    id,
    transport,
    log,
    received: [],
    batches: 0,
    unreachable: [],
    snapshotStatus: [],
    url: '',
  };
  transport.onMessages((messages) => {
    member.batches += 1;
    member.received.push(...messages);
  });
  transport.onUnreachable((peer) => member.unreachable.push(peer));
  transport.onSnapshotStatus((peer, ok) => member.snapshotStatus.push({ id: peer, ok }));
  await transport.start();
  member.url = transport.listeningUrls()[0] as string;
  return member;
}

/** Makes every member a peer of every other and waits until all links are up. */
export async function connectAll(members: TestMember[]): Promise<void> {
  for (const member of members) {
    for (const other of members) if (other !== member) member.transport.addPeer(other.id, [other.url]);
  }
  await waitFor(
    () => members.every((member) => member.transport.activePeers().length === members.length - 1),
    'all peer links up',
  );
}
