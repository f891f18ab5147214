/**
 * The peer transport for the single-host cluster mode, where every member is a worker thread of one
 * process: the same frames as over WebSocket, carried on one MessagePort per pair of members. The
 * supervisor creates a MessageChannel per pair and hands one port to each side. Each frame's
 * ArrayBuffer is transferred, not copied; the receiver decodes in place.
 *
 * A snapshot goes as a control message with the same MsgSnap frame and the path of the leader's
 * copy of its database: members of one process share the disk, so the follower copies the file
 * and answers on the same port once it stored it and took the message.
 */
import type { MessagePort } from 'node:worker_threads';
import { assert } from '../../src/lib/assert.js';
import { formatId } from '../../src/membership/ids.js';
import type { Message, NodeId } from '../../src/raft/types.js';
import {
  defaultTransportLimits,
  type PeerAnswer,
  type PeerCall,
  type OutgoingLink,
  type PeerLog,
  silentPeerLog,
  type TransportLimits,
  TransportBase,
} from './links.js';
import type { PortControl } from '../supervisor/thread-protocol.js';

export interface MessagePortTransportOptions {
  localId: NodeId;
  clusterId: bigint;
  log?: PeerLog;
  limits?: Partial<TransportLimits>;
}

const controlKinds = new Set(['snapshot', 'snapshot-done', 'call', 'call-answer']);

function isPortControl(value: unknown): value is PortControl {
  return controlKinds.has((value as { kind?: unknown } | null)?.kind as string);
}

/** One peer's port; it is open until either side closes it. */
class PortLink implements OutgoingLink {
  open = true;

  constructor(
    readonly id: NodeId,
    readonly port: MessagePort,
  ) {}

  isOpen(): boolean {
    return this.open;
  }

  // A port has no visible queue: the receiving thread drains it as fast as it runs.
  bufferedBytes(): number {
    return 0;
  }

  write(frame: Uint8Array, written?: (error?: Error | null) => void): void {
    const buffer = frame.buffer as ArrayBuffer;
    assert(
      frame.byteOffset === 0 && frame.byteLength === buffer.byteLength,
      () => `a frame must own its ArrayBuffer (${frame.byteLength} of ${buffer.byteLength} bytes)`,
    );
    this.port.postMessage(buffer, [buffer]);
    if (written !== undefined) queueMicrotask(() => written());
  }
}

export class MessagePortTransport extends TransportBase<MessagePort> {
  private readonly links = new Map<NodeId, PortLink>();
  private closed = false;
  private snapshotSeq = 0;
  /** Snapshots sent and not yet answered, by sequence number. */
  private readonly snapshotsInFlight = new Map<number, { resolve(): void; reject(error: Error): void; to: NodeId }>();
  private callSeq = 0;
  /** Calls sent and not yet answered, by sequence number. */
  private readonly callsInFlight = new Map<
    number,
    { resolve(answer: PeerAnswer): void; reject(error: Error): void; to: NodeId }
  >();

  constructor(options: MessagePortTransportOptions) {
    super({ localId: options.localId, clusterId: options.clusterId }, options.log ?? silentPeerLog, {
      ...defaultTransportLimits,
      ...options.limits,
    });
  }

  async start(): Promise<void> {}

  addPeer(id: NodeId, port: MessagePort): void {
    if (id === this.identity.localId || this.closed) return;
    this.removePeer(id);
    const link = new PortLink(id, port);
    this.links.set(id, link);
    port.on('message', (value: unknown) => this.handleInbound(link, value));
    port.on('close', () => {
      link.open = false;
    });
  }

  /** A new port for `id` replaces (and closes) the old one. */
  updatePeer(id: NodeId, port: MessagePort): void {
    this.addPeer(id, port);
  }

  removePeer(id: NodeId): void {
    const link = this.links.get(id);
    for (const waiters of [this.snapshotsInFlight, this.callsInFlight] as Map<
      number,
      { reject(error: Error): void; to: NodeId }
    >[]) {
      for (const [seq, waiter] of waiters) {
        if (waiter.to !== id) continue;
        waiters.delete(seq);
        waiter.reject(new Error(`peer ${formatId(id)} went away before answering`));
      }
    }
    if (link === undefined) return;
    this.links.delete(id);
    link.open = false;
    link.port.close();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const id of [...this.links.keys()]) this.removePeer(id);
  }

  sendSnapshot(message: Message, dbPath: string): Promise<void> {
    const link = this.links.get(message.to);
    if (link === undefined || !link.open) return Promise.reject(new Error(`no open port to ${formatId(message.to)}`));
    const frame = this.snapshotFrame(message);
    const seq = ++this.snapshotSeq;
    return new Promise<void>((resolve, reject) => {
      this.snapshotsInFlight.set(seq, { resolve, reject, to: message.to });
      const control: PortControl = { kind: 'snapshot', seq, frame: frame.buffer as ArrayBuffer, dbPath };
      link.port.postMessage(control, [control.frame]);
    });
  }

  call(to: NodeId, call: PeerCall, timeoutMs: number): Promise<PeerAnswer> {
    const link = this.links.get(to);
    if (link === undefined || !link.open) return Promise.reject(new Error(`no open port to ${formatId(to)}`));
    const seq = ++this.callSeq;
    return new Promise<PeerAnswer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.callsInFlight.delete(seq);
        reject(new Error(`peer ${formatId(to)} did not answer ${call.path} within ${timeoutMs} ms`));
      }, timeoutMs);
      const settle = (done: () => void) => {
        clearTimeout(timer);
        done();
      };
      this.callsInFlight.set(seq, {
        to,
        resolve: (answer) => settle(() => resolve(answer)),
        reject: (error) => settle(() => reject(error)),
      });
      link.port.postMessage({ kind: 'call', seq, call } satisfies PortControl);
    });
  }

  activePeers(): NodeId[] {
    return [...this.links.values()].filter((link) => link.open).map((link) => link.id);
  }

  protected outgoingLink(id: NodeId): OutgoingLink | undefined {
    return this.links.get(id);
  }

  private handleInbound(link: PortLink, value: unknown): void {
    if (!link.open) return;
    if (isPortControl(value)) return this.handleControl(link, value);
    try {
      if (!(value instanceof ArrayBuffer)) throw new Error(`port message is not an ArrayBuffer frame`);
      this.receive(new Uint8Array(value), link.id);
    } catch (error) {
      // Both ends run our code in one process, so a bad frame is a bug: stop using the port.
      // The link stays known, so sends to it are reported unreachable.
      this.log.warn(
        { 'remote-peer-id': formatId(link.id), error: (error as Error).message },
        'closing peer port after a bad frame',
      );
      link.open = false;
      link.port.close();
    }
  }

  private handleControl(link: PortLink, control: PortControl): void {
    if (control.kind === 'call') {
      void this.answerCall(control.call).then((answer) => {
        if (link.open) link.port.postMessage({ kind: 'call-answer', seq: control.seq, answer } satisfies PortControl);
      });
      return;
    }
    if (control.kind === 'call-answer') {
      const waiter = this.callsInFlight.get(control.seq);
      this.callsInFlight.delete(control.seq);
      waiter?.resolve(control.answer);
      return;
    }
    if (control.kind === 'snapshot-done') {
      const waiter = this.snapshotsInFlight.get(control.seq);
      this.snapshotsInFlight.delete(control.seq);
      if (control.error === undefined) waiter?.resolve();
      else waiter?.reject(new Error(control.error));
      return;
    }
    const answer = (error?: Error) => {
      const done: PortControl =
        error === undefined
          ? { kind: 'snapshot-done', seq: control.seq }
          : { kind: 'snapshot-done', seq: control.seq, error: error.message };
      if (link.open) link.port.postMessage(done);
    };
    this.acceptSnapshot(new Uint8Array(control.frame), link.id, { kind: 'file', path: control.dbPath }).then(
      () => answer(),
      (error: Error) => {
        this.log.warn({ 'remote-peer-id': formatId(link.id), error: error.message }, 'failed to receive snapshot');
        answer(error);
      },
    );
  }
}
