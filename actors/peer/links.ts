/**
 * What every peer transport shares, whatever carries its frames (WebSocket or MessagePort): the
 * RaftTransport contract, grouping a Ready's messages into one frame per destination, dropping and
 * reporting when a link is down or backed up, and checking inbound frames before Raft sees them.
 */
import { peerBufferedBytesMax, peerFrameBytesMax } from '../../src/lib/limits.js';
import { ClusterIdMismatchError, decodeFrameFor, encodeFrame } from '../../src/raft/message-codec.js';
import { type Message, MessageType, type NodeId } from '../../src/raft/types.js';
import { formatId } from '../../src/membership/ids.js';
import type { SnapshotBody } from './snapshot-transfer.js';

/** The few log calls the transports make; a pino Logger fits. */
export interface PeerLog {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export const silentPeerLog: PeerLog = { debug() {}, info() {}, warn() {} };

/** Counters for tests, metrics and benchmarks. */
export interface TransportStats {
  framesSent: number;
  messagesSent: number;
  bytesSent: number;
  framesReceived: number;
  messagesReceived: number;
  bytesReceived: number;
  /** Messages dropped because their peer was unknown, down, backed up, or the frame too large. */
  messagesDropped: number;
  /** Inbound frames refused: malformed, too large or from another cluster. */
  framesRefused: number;
}

/** Bytes by peer; a peer appears once a frame went to or came from it. */
export interface PeerBytes {
  sent: ReadonlyMap<NodeId, number>;
  received: ReadonlyMap<NodeId, number>;
}

/**
 * A member's links to the other members. Callbacks never run inside send(): they are deferred to a
 * microtask or come from I/O, so the caller may call RawNode from them without reentrancy.
 */
export interface RaftTransport<Endpoint> {
  start(): Promise<void>;
  /** Sends a Ready's messages: one frame per destination, dropped and reported when a peer is unreachable. */
  send(messages: readonly Message[]): void;
  /** Inbound batches, already checked: from a known peer of this cluster, addressed to this member. */
  onMessages(handler: (messages: Message[]) => void): void;
  /** Called with a peer whose messages were dropped; the member calls RawNode.reportUnreachable. */
  onUnreachable(handler: (id: NodeId) => void): void;
  /** Called once per snapshot message; the member calls RawNode.reportSnapshot. */
  onSnapshotStatus(handler: (id: NodeId, ok: boolean) => void): void;
  /**
   * Sends a MsgSnap together with the backend database at `dbPath`; resolves once the peer stored
   * the database durably and took the message, rejects when it could not.
   */
  sendSnapshot(message: Message, dbPath: string): Promise<void>;
  /** Where received snapshots go: the member stores the database, then steps the message. */
  onSnapshot(sink: SnapshotSink): void;
  /** A call to the peer API of member `to` (see api.ts); rejects when no answer came in `timeoutMs`. */
  call(to: NodeId, call: PeerCall, timeoutMs: number): Promise<PeerAnswer>;
  /** Answers peers' calls to this member; undefined means the path is not served (404). */
  onCall(handler: PeerCallHandler): void;
  addPeer(id: NodeId, endpoint: Endpoint): void;
  updatePeer(id: NodeId, endpoint: Endpoint): void;
  removePeer(id: NodeId): void;
  /** Peers whose outgoing link is up right now (etcd's active peers). */
  activePeers(): NodeId[];
  stats(): TransportStats;
  /** Frame bytes sent to and received from each peer (etcd's etcd_network_peer_*_bytes_total). */
  peerBytes(): PeerBytes;
  close(): Promise<void>;
}

/** A call to a peer member's API besides Raft, shaped like the HTTP request etcd makes for it. */
export interface PeerCall {
  method: 'GET' | 'POST';
  path: string;
  body: string;
}

export interface PeerAnswer {
  status: number;
  contentType: string;
  body: string;
}

export type PeerCallHandler = (call: PeerCall) => Promise<PeerAnswer> | undefined;

/** Bytes of a peer call's body read at most; the calls carry an ID or two. */
export const peerCallBodyBytesMax = 64 * 1024;

/** The answer to a call for a path nobody serves. */
export const notFoundAnswer: PeerAnswer = {
  status: 404,
  contentType: 'text/plain; charset=utf-8',
  body: '404 page not found\n',
};

/** Receives a MsgSnap and its database; resolves once both are taken. */
export type SnapshotSink = (message: Message, body: SnapshotBody) => Promise<void>;

/** What the shared send path needs from one peer's outgoing link. */
export interface OutgoingLink {
  isOpen(): boolean;
  bufferedBytes(): number;
  /** Queues a frame; `written` (when given) learns whether it reached the connection. */
  write(frame: Uint8Array, written?: (error?: Error | null) => void): void;
}

export interface TransportIdentity {
  localId: NodeId;
  clusterId: bigint;
}

export interface TransportLimits {
  frameBytesMax: number;
  bufferedBytesMax: number;
}

export const defaultTransportLimits: TransportLimits = {
  frameBytesMax: peerFrameBytesMax,
  bufferedBytesMax: peerBufferedBytesMax,
};

type DropReason = 'unknown peer' | 'link down' | 'buffer full' | 'frame too large';

export abstract class TransportBase<Endpoint> implements RaftTransport<Endpoint> {
  protected readonly counters: TransportStats = {
    framesSent: 0,
    messagesSent: 0,
    bytesSent: 0,
    framesReceived: 0,
    messagesReceived: 0,
    bytesReceived: 0,
    messagesDropped: 0,
    framesRefused: 0,
  };
  private readonly bytesSentTo = new Map<NodeId, number>();
  private readonly bytesReceivedFrom = new Map<NodeId, number>();
  private messageHandler: (messages: Message[]) => void = () => {};
  private unreachableHandler: (id: NodeId) => void = () => {};
  private snapshotHandler: (id: NodeId, ok: boolean) => void = () => {};
  private snapshotSink: SnapshotSink = () => Promise.reject(new Error('this member does not take snapshots'));
  private callHandler: PeerCallHandler = () => undefined;

  constructor(
    protected readonly identity: TransportIdentity,
    protected readonly log: PeerLog,
    protected readonly limits: TransportLimits,
  ) {}

  abstract start(): Promise<void>;
  abstract addPeer(id: NodeId, endpoint: Endpoint): void;
  abstract updatePeer(id: NodeId, endpoint: Endpoint): void;
  abstract removePeer(id: NodeId): void;
  abstract close(): Promise<void>;
  abstract activePeers(): NodeId[];
  abstract sendSnapshot(message: Message, dbPath: string): Promise<void>;
  abstract call(to: NodeId, call: PeerCall, timeoutMs: number): Promise<PeerAnswer>;
  /** The link messages to `id` leave by, or undefined for a peer this member does not know. */
  protected abstract outgoingLink(id: NodeId): OutgoingLink | undefined;

  onMessages(handler: (messages: Message[]) => void): void {
    this.messageHandler = handler;
  }

  onUnreachable(handler: (id: NodeId) => void): void {
    this.unreachableHandler = handler;
  }

  onSnapshotStatus(handler: (id: NodeId, ok: boolean) => void): void {
    this.snapshotHandler = handler;
  }

  onSnapshot(sink: SnapshotSink): void {
    this.snapshotSink = sink;
  }

  onCall(handler: PeerCallHandler): void {
    this.callHandler = handler;
  }

  /** The member's answer to a peer's call; a failing handler answers 500 with its message. */
  protected async answerCall(call: PeerCall): Promise<PeerAnswer> {
    try {
      return (await this.callHandler(call)) ?? notFoundAnswer;
    } catch (error) {
      return { status: 500, contentType: 'text/plain; charset=utf-8', body: `${(error as Error).message}\n` };
    }
  }

  stats(): TransportStats {
    return { ...this.counters };
  }

  peerBytes(): PeerBytes {
    return { sent: this.bytesSentTo, received: this.bytesReceivedFrom };
  }

  send(messages: readonly Message[]): void {
    for (const [to, batch] of groupByDestination(messages)) this.sendBatch(to, batch);
  }

  private sendBatch(to: NodeId, batch: Message[]): void {
    const link = this.outgoingLink(to);
    if (link === undefined) return this.drop(to, batch, 'unknown peer');
    if (!link.isOpen()) return this.drop(to, batch, 'link down');
    if (link.bufferedBytes() > this.limits.bufferedBytesMax) return this.drop(to, batch, 'buffer full');
    for (const part of this.encodeWithinBound(to, batch)) {
      const snapshots = part.messages.filter((message) => message.type === MessageType.snap).length;
      const written =
        snapshots === 0 ? undefined : (error?: Error | null) => this.reportSnapshots(to, snapshots, error == null);
      link.write(part.frame, written);
      this.counters.framesSent += 1;
      this.counters.messagesSent += part.messages.length;
      this.counters.bytesSent += part.frame.length;
      this.bytesSentTo.set(to, (this.bytesSentTo.get(to) ?? 0) + part.frame.length);
    }
  }

  /** One frame for the batch, split in halves only when it would exceed the frame bound. */
  private encodeWithinBound(to: NodeId, batch: Message[]): { frame: Uint8Array; messages: Message[] }[] {
    const frame = encodeFrame({ clusterId: this.identity.clusterId, senderId: this.identity.localId }, batch);
    if (frame.length <= this.limits.frameBytesMax) return [{ frame, messages: batch }];
    if (batch.length === 1) {
      this.drop(to, batch, 'frame too large', {
        'frame-bytes': frame.length,
        'frame-bytes-max': this.limits.frameBytesMax,
      });
      return [];
    }
    const half = Math.ceil(batch.length / 2);
    return [...this.encodeWithinBound(to, batch.slice(0, half)), ...this.encodeWithinBound(to, batch.slice(half))];
  }

  private drop(to: NodeId, batch: Message[], reason: DropReason, fields: object = {}): void {
    this.counters.messagesDropped += batch.length;
    const level = reason === 'frame too large' ? 'warn' : 'debug';
    this.log[level](
      { 'remote-peer-id': formatId(to), messages: batch.length, reason, ...fields },
      'dropped messages to peer',
    );
    const snapshots = batch.filter((message) => message.type === MessageType.snap).length;
    // etcd raft ignores reports for a member it does not track, but there is nothing to say either.
    if (reason === 'unknown peer') return;
    queueMicrotask(() => this.unreachableHandler(to));
    if (snapshots > 0) queueMicrotask(() => this.reportSnapshots(to, snapshots, false));
  }

  private reportSnapshots(to: NodeId, count: number, ok: boolean): void {
    for (let i = 0; i < count; i++) this.snapshotHandler(to, ok);
  }

  /** The frame that opens a snapshot stream: the one MsgSnap, from this member to its peer. */
  protected snapshotFrame(message: Message): Uint8Array {
    if (message.type !== MessageType.snap || message.snapshot === undefined)
      throw new Error(`not a snapshot message: type ${message.type}`);
    return encodeFrame({ clusterId: this.identity.clusterId, senderId: this.identity.localId }, [message]);
  }

  /**
   * Checks a snapshot stream's frame from `senderId` (one MsgSnap of this cluster, for this member)
   * and hands it with its database to the member. Throws what the frame check or the member threw.
   */
  protected async acceptSnapshot(frame: Uint8Array, senderId: NodeId, body: SnapshotBody): Promise<void> {
    const expected = { clusterId: this.identity.clusterId, localId: this.identity.localId, senderId };
    let messages: Message[];
    try {
      messages = decodeFrameFor(frame, expected, this.limits.frameBytesMax).messages;
    } catch (error) {
      this.counters.framesRefused += 1;
      throw error;
    }
    const [message] = messages;
    if (messages.length !== 1 || message?.type !== MessageType.snap || message.snapshot === undefined) {
      this.counters.framesRefused += 1;
      throw new Error('a snapshot stream must open with exactly one MsgSnap');
    }
    this.counters.framesReceived += 1;
    this.counters.messagesReceived += 1;
    this.counters.bytesReceived += frame.length;
    await this.snapshotSink(message, body);
  }

  /**
   * Checks an inbound frame from `senderId` and hands its messages to the handler. Throws
   * MalformedFrameError, FrameTooLargeError or ClusterIdMismatchError; the caller closes the link.
   */
  protected receive(frame: Uint8Array, senderId: NodeId): void {
    let messages: Message[];
    try {
      const expected = { clusterId: this.identity.clusterId, localId: this.identity.localId, senderId };
      messages = decodeFrameFor(frame, expected, this.limits.frameBytesMax).messages;
    } catch (error) {
      this.counters.framesRefused += 1;
      const fields = { 'remote-peer-id': formatId(senderId), 'local-member-id': formatId(this.identity.localId) };
      const message = error instanceof ClusterIdMismatchError ? 'request cluster ID mismatch' : 'refused peer frame';
      this.log.warn({ ...fields, error: (error as Error).message }, message);
      throw error;
    }
    this.counters.framesReceived += 1;
    this.counters.messagesReceived += messages.length;
    this.counters.bytesReceived += frame.length;
    this.bytesReceivedFrom.set(senderId, (this.bytesReceivedFrom.get(senderId) ?? 0) + frame.length);
    try {
      this.messageHandler(messages);
    } catch (error) {
      // The member's own failure: the link is fine, so it stays open.
      this.log.warn(
        { 'remote-peer-id': formatId(senderId), error: (error as Error).message },
        'message handler failed',
      );
    }
  }
}

/** Splits messages by destination, keeping each destination's order. */
export function groupByDestination(messages: readonly Message[]): Map<NodeId, Message[]> {
  const groups = new Map<NodeId, Message[]>();
  for (const message of messages) {
    const group = groups.get(message.to);
    if (group === undefined) groups.set(message.to, [message]);
    else group.push(message);
  }
  return groups;
}

/** Shortens text to at most `bytesMax` UTF-8 bytes (a WebSocket close reason holds 123). */
export function truncateUtf8(text: string, bytesMax: number): string {
  let result = text;
  while (Buffer.byteLength(result) > bytesMax) result = result.slice(0, Math.max(0, result.length - 8));
  return result;
}
