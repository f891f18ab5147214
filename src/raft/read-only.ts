/**
 * Linearizable reads by ReadIndex: the leader records its commit index for a request and answers
 * once a quorum has acknowledged a heartbeat carrying the request's context.
 */
import type { Message, NodeId } from './types.js';

export interface ReadIndexStatus {
  request: Message;
  index: number;
  acks: Set<NodeId>;
}

/** Key for a request context; contexts are short, so a latin1 string is cheap and exact. */
export function contextKey(context: Uint8Array): string {
  let key = '';
  for (const byte of context) key += String.fromCharCode(byte);
  return key;
}

export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  /** Queues a read at `index`; a repeated context is ignored. */
  addRequest(index: number, request: Message, context: Uint8Array): void {
    const key = contextKey(context);
    if (this.pending.has(key)) return;
    this.pending.set(key, { request, index, acks: new Set() });
    this.queue.push(key);
  }

  /** Records a heartbeat acknowledgement; returns the acks so far, or undefined if unknown. */
  recvAck(from: NodeId, context: Uint8Array): Set<NodeId> | undefined {
    const status = this.pending.get(contextKey(context));
    if (!status) return undefined;
    status.acks.add(from);
    return status.acks;
  }

  /** Releases every read queued up to and including `context`, in order. */
  advance(context: Uint8Array): ReadIndexStatus[] {
    const key = contextKey(context);
    const position = this.queue.indexOf(key);
    if (position < 0) return [];
    const released = this.queue.slice(0, position + 1);
    this.queue = this.queue.slice(position + 1);
    const statuses: ReadIndexStatus[] = [];
    for (const k of released) {
      const status = this.pending.get(k);
      if (status) statuses.push(status);
      this.pending.delete(k);
    }
    return statuses;
  }

  lastPendingContext(): Uint8Array | undefined {
    const key = this.queue[this.queue.length - 1];
    if (key === undefined) return undefined;
    return this.pending.get(key)?.request.entries[0]?.data;
  }

  pendingCount(): number {
    return this.queue.length;
  }
}
