/**
 * What an inspector is shown of a machine's events and snapshots: small plain JSON, never the
 * Raft core itself (its log holds every user's keys and values) nor bigints, which JSON cannot
 * carry. Member IDs are hex as etcdctl prints them; message types carry etcd raft's names.
 */
import type { AnyEventObject } from 'xstate';
import { inspectBatchMessagesMax } from '../../src/lib/limits.js';
import { formatId } from '../../src/membership/ids.js';
import type { RaftCore } from '../../src/raft/raft.js';
import { type Message, messageTypeNames } from '../../src/raft/types.js';

/** The role machine's context as shown: the Raft state that explains the role, no log contents. */
function raftContext(context: { core: RaftCore; droppedReason: string | undefined }): Record<string, unknown> {
  const core = context.core;
  return {
    member: formatId(core.id),
    term: core.term,
    vote: formatId(core.vote),
    leader: formatId(core.leaderId),
    commit: core.log.committed,
    lastIndex: core.log.lastIndex(),
    electionElapsedTicks: core.electionElapsedTicks,
    droppedReason: context.droppedReason,
  };
}

function lifecycleContext(context: { fatalError: Error | undefined; removed: boolean }): Record<string, unknown> {
  return { removed: context.removed, fatalError: context.fatalError?.message };
}

/** Any other machine's context: its plain top-level fields. */
function plainContext(context: Record<string, unknown>): Record<string, unknown> {
  const shown: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(context)) {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') shown[key] = value;
    else if (typeof value === 'bigint') shown[key] = formatId(value);
  }
  return shown;
}

/** A snapshot as the inspector is shown it: status, state value and a summary of the context. */
export function summarizeSnapshot(
  machineId: string,
  snapshot: { status: string; value?: unknown; context?: unknown },
): { status: 'active' | 'done' | 'error' | 'stopped'; value: unknown; context: Record<string, unknown> } {
  const context = (snapshot.context ?? {}) as Record<string, unknown>;
  const shown =
    machineId === 'raftRole'
      ? raftContext(context as never)
      : machineId === 'memberLifecycle'
        ? lifecycleContext(context as never)
        : plainContext(context);
  return { status: snapshot.status as 'active', value: snapshot.value, context: shown };
}

/** One Raft message as shown: who, what, which term and log position, never the entries' data. */
function summarizeMessage(message: Message): Record<string, unknown> {
  return {
    type: messageTypeNames[message.type] ?? String(message.type),
    from: formatId(message.from),
    to: formatId(message.to),
    term: message.term,
    logTerm: message.logTerm,
    index: message.index,
    commit: message.commit,
    entries: message.entries.length,
    reject: message.reject,
  };
}

/** An event as shown: bigints as hex IDs, messages summarised, payload bytes and conf change contexts left out. */
export function summarizeEvent(event: AnyEventObject): AnyEventObject {
  switch (event.type) {
    case 'MESSAGE': {
      const messages = event.messages as readonly Message[];
      return {
        type: 'MESSAGE',
        count: messages.length,
        messages: messages.slice(0, inspectBatchMessagesMax).map(summarizeMessage),
      };
    }
    case 'PROPOSE':
      return { type: 'PROPOSE', entries: (event.entries as unknown[]).length };
    case 'READ_INDEX':
      return { type: 'READ_INDEX' };
    case 'APPLY_CONF_CHANGE': {
      const change = event.change as { type: number; nodeId: bigint };
      return { type: 'APPLY_CONF_CHANGE', changeType: change.type, nodeId: formatId(change.nodeId) };
    }
    case 'FATAL':
      return { type: 'FATAL', error: (event.error as Error).message };
    case 'xstate.init':
      // The init event carries the machine's input: the whole Raft core.
      return { type: 'xstate.init' };
    default:
      return plainContext(event) as AnyEventObject;
  }
}

/**
 * Events that come many times a second and mostly change nothing: each tick, heartbeat, append,
 * proposal and read. Without --inspect-all-events they are left out unless they change the state
 * or cause a named event (a tick that times out an election is shown, with the ELECTION_TIMEOUT).
 */
export function isHighRateEvent(type: string): boolean {
  return (
    type === 'TICK' ||
    type === 'MESSAGE' ||
    type === 'PROPOSE' ||
    type === 'READ_INDEX' ||
    type === 'REPORT_UNREACHABLE' ||
    type === 'REPORT_SNAPSHOT'
  );
}
