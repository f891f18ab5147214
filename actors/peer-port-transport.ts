/**
 * The peer transport for the single-host cluster mode, where every member is a worker thread of one
 * process: the same frames as over WebSocket, carried on one MessagePort per pair of members. The
 * supervisor creates a MessageChannel per pair and hands one port to each side. Each frame's
 * ArrayBuffer is transferred, not copied; the receiver decodes in place.
 */
import type { MessagePort } from 'node:worker_threads';
import { assert } from '../src/lib/assert.js';
import { formatId } from '../src/membership/ids.js';
import type { NodeId } from '../src/raft/types.js';
import {
  defaultTransportLimits,
  type OutgoingLink,
  type PeerLog,
  silentPeerLog,
  type TransportLimits,
  TransportBase,
} from './peer-links.js';

export interface MessagePortTransportOptions {
  localId: NodeId;
  clusterId: bigint;
  log?: PeerLog;
  limits?: Partial<TransportLimits>;
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
    assert(frame.byteOffset === 0 && frame.byteLength === buffer.byteLength, () => `a frame must own its ArrayBuffer (${frame.byteLength} of ${buffer.byteLength} bytes)`);
    this.port.postMessage(buffer, [buffer]);
    if (written !== undefined) queueMicrotask(() => written());
  }
}

export class MessagePortTransport extends TransportBase<MessagePort> {
  private readonly links = new Map<NodeId, PortLink>();
  private closed = false;

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
    if (link === undefined) return;
    this.links.delete(id);
    link.open = false;
    link.port.close();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const id of [...this.links.keys()]) this.removePeer(id);
  }

  activePeers(): NodeId[] {
    return [...this.links.values()].filter((link) => link.open).map((link) => link.id);
  }

  protected outgoingLink(id: NodeId): OutgoingLink | undefined {
    return this.links.get(id);
  }

  private handleInbound(link: PortLink, value: unknown): void {
    if (!link.open) return;
    try {
      if (!(value instanceof ArrayBuffer)) throw new Error(`port message is not an ArrayBuffer frame`);
      this.receive(new Uint8Array(value), link.id);
    } catch (error) {
      // Both ends run our code in one process, so a bad frame is a bug: stop using the port.
      // The link stays known, so sends to it are reported unreachable.
      this.log.warn({ 'remote-peer-id': formatId(link.id), error: (error as Error).message }, 'closing peer port after a bad frame');
      link.open = false;
      link.port.close();
    }
  }
}
