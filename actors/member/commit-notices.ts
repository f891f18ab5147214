/**
 * A leader tells followers of a new commit index with an empty MsgApp: one frame, and one wake-up
 * of every follower, per commit. A follower that proposed none of the newly committed entries has
 * no client waiting on them, so its notice can wait for the next message to it, which carries the
 * commit index too. A delayed (or, when a newer notice replaces it, dropped) message is one Raft
 * tolerates; the member sends what is still held after a few milliseconds.
 */
import { proposalOrigin } from '../../src/api/proposal-codec.js';
import { type Entry, EntryType, type Message, MessageType, type NodeId } from '../../src/raft/types.js';

/** An empty MsgApp: what a leader sends to move a follower's commit index (or to probe it). */
export function isCommitNotice(message: Message): boolean {
  return message.type === MessageType.app && message.entries.length === 0;
}

export class CommitNoticeHold {
  private readonly held = new Map<NodeId, Message>();

  get size(): number {
    return this.held.size;
  }

  /**
   * The leader's messages of one Ready, less the notices held back; a held notice goes out first
   * with the next message to its follower. `committed` are the Ready's newly committed entries.
   */
  route(messages: readonly Message[], committed: readonly Entry[]): Message[] {
    if (this.held.size === 0 && !messages.some(isCommitNotice)) return messages as Message[];
    const waiting = committedOrigins(committed);
    const out: Message[] = [];
    for (const message of messages) {
      if (isCommitNotice(message) && waiting !== undefined && !waiting.has(message.to)) {
        this.held.set(message.to, message);
        continue;
      }
      const held = this.held.get(message.to);
      if (held !== undefined) {
        this.held.delete(message.to);
        out.push(held);
      }
      out.push(message);
    }
    return out;
  }

  /** Every held notice, now due; the hold is empty afterwards. */
  takeAll(): Message[] {
    const held = [...this.held.values()];
    this.held.clear();
    return held;
  }
}

/** The members that proposed `committed`; undefined when some origin takes a decode to learn. */
function committedOrigins(committed: readonly Entry[]): Set<bigint> | undefined {
  const origins = new Set<bigint>();
  for (const entry of committed) {
    if (entry.type !== EntryType.normal || entry.data.length === 0) continue;
    const origin = proposalOrigin(entry.data);
    if (origin === undefined) return undefined;
    origins.add(origin);
  }
  return origins;
}
