/**
 * Raft roles as an XState v5 machine: follower, preCandidate, candidate and leader are state
 * nodes, each binding the events it accepts to the core's per-role handlers. Actions only
 * `assign`: they run the plain functions in src/raft over the core record in context, which push
 * messages and read states into the core's outbox. Role changes happen inside those functions
 * (a single step can go follower -> candidate -> leader), so each state node follows the core's
 * role with guarded eventless transitions.
 *
 * The core record is held by reference and mutated in place: the machine is its only owner and
 * snapshots are never revisited, which keeps one event per tick or message batch cheap.
 */
import { assign, createActor, initialTransition, setup, transition, type Actor, type SnapshotFrom } from 'xstate';
import type { ConfChange } from '../src/raft/conf-change.js';
import {
  type RaftCore,
  applyConfChange,
  hup,
  leaderPropose,
  leaderReadIndex,
  message,
  stepMessage,
  tickElection,
  tickHeartbeat,
} from '../src/raft/raft.js';
import { type Entry, type Message, MessageType, type NodeId, RaftRole } from '../src/raft/types.js';

export type RaftRoleEvent =
  | { type: 'TICK' }
  | { type: 'MESSAGE'; messages: readonly Message[] }
  | { type: 'PROPOSE'; entries: Entry[] }
  | { type: 'CAMPAIGN' }
  | { type: 'READ_INDEX'; requestCtx: Uint8Array }
  | { type: 'TRANSFER_LEADER'; to: NodeId }
  | { type: 'REPORT_UNREACHABLE'; id: NodeId }
  | { type: 'REPORT_SNAPSHOT'; id: NodeId; rejected: boolean }
  | { type: 'APPLY_CONF_CHANGE'; change: ConfChange };

export interface RaftRoleContext {
  core: RaftCore;
  /** The ConfState produced by the latest APPLY_CONF_CHANGE, for the caller to read back. */
  confState: ReturnType<typeof applyConfChange> | undefined;
}

type EventOf<T extends RaftRoleEvent['type']> = Extract<RaftRoleEvent, { type: T }>;

/** Runs `work` on the core for events of type `type`; the assign keeps the reference. */
function onCore<T extends RaftRoleEvent['type']>(type: T, work: (core: RaftCore, event: EventOf<T>) => void) {
  return assign<RaftRoleContext, RaftRoleEvent, undefined, RaftRoleEvent, never>(({ context, event }) => {
    if (event.type === type) work(context.core, event as EventOf<T>);
    return {};
  });
}

function proposalMessage(entries: Entry[]): Message {
  return message({ type: MessageType.prop, entries });
}

function readIndexMessage(requestCtx: Uint8Array): Message {
  return message({ type: MessageType.readIndex, entries: [{ term: 0, index: 0, type: 0, data: requestCtx }] });
}

export const raftRoleMachine = setup({
  types: {
    context: {} as RaftRoleContext,
    events: {} as RaftRoleEvent,
    input: {} as { core: RaftCore },
  },
  guards: {
    isFollower: ({ context }) => context.core.role === RaftRole.follower,
    isPreCandidate: ({ context }) => context.core.role === RaftRole.preCandidate,
    isCandidate: ({ context }) => context.core.role === RaftRole.candidate,
    isLeader: ({ context }) => context.core.role === RaftRole.leader,
  },
  actions: {
    tickElection: onCore('TICK', (core) => tickElection(core)),
    tickHeartbeat: onCore('TICK', (core) => tickHeartbeat(core)),
    stepMessages: onCore('MESSAGE', (core, event) => {
      for (const m of event.messages) stepMessage(core, m);
    }),
    campaign: onCore('CAMPAIGN', (core) => hup(core, core.preVote ? 'preElection' : 'election')),
    forwardProposal: onCore('PROPOSE', (core, event) => stepMessage(core, proposalMessage(event.entries))),
    appendProposal: onCore('PROPOSE', (core, event) => leaderPropose(core, proposalMessage(event.entries))),
    dropProposal: onCore('PROPOSE', (core) => {
      core.droppedReason = 'no leader (election in progress)';
    }),
    forwardReadIndex: onCore('READ_INDEX', (core, event) => stepMessage(core, readIndexMessage(event.requestCtx))),
    confirmReadIndex: onCore('READ_INDEX', (core, event) => leaderReadIndex(core, readIndexMessage(event.requestCtx))),
    dropReadIndex: onCore('READ_INDEX', (core) => {
      core.droppedReason = 'no leader (election in progress)';
    }),
    transferLeader: onCore('TRANSFER_LEADER', (core, event) =>
      stepMessage(core, message({ type: MessageType.transferLeader, from: event.to, to: core.id }))),
    reportUnreachable: onCore('REPORT_UNREACHABLE', (core, event) =>
      stepMessage(core, message({ type: MessageType.unreachable, from: event.id, to: core.id }))),
    reportSnapshot: onCore('REPORT_SNAPSHOT', (core, event) =>
      stepMessage(core, message({ type: MessageType.snapStatus, from: event.id, to: core.id, reject: event.rejected }))),
    applyConfChange: assign(({ context, event }) => {
      if (event.type !== 'APPLY_CONF_CHANGE') return {};
      return { confState: applyConfChange(context.core, event.change) };
    }),
  },
}).createMachine({
  id: 'raftRole',
  context: ({ input }) => ({ core: input.core, confState: undefined }),
  initial: 'follower',
  on: {
    APPLY_CONF_CHANGE: { actions: 'applyConfChange' },
  },
  states: {
    follower: {
      always: [
        { guard: 'isPreCandidate', target: 'preCandidate' },
        { guard: 'isCandidate', target: 'candidate' },
        { guard: 'isLeader', target: 'leader' },
      ],
      on: {
        TICK: { actions: 'tickElection' },
        MESSAGE: { actions: 'stepMessages' },
        CAMPAIGN: { actions: 'campaign' },
        PROPOSE: { actions: 'forwardProposal' },
        READ_INDEX: { actions: 'forwardReadIndex' },
        TRANSFER_LEADER: { actions: 'transferLeader' },
      },
    },
    preCandidate: {
      always: [
        { guard: 'isFollower', target: 'follower' },
        { guard: 'isCandidate', target: 'candidate' },
        { guard: 'isLeader', target: 'leader' },
      ],
      on: {
        TICK: { actions: 'tickElection' },
        MESSAGE: { actions: 'stepMessages' },
        CAMPAIGN: { actions: 'campaign' },
        PROPOSE: { actions: 'dropProposal' },
        READ_INDEX: { actions: 'dropReadIndex' },
      },
    },
    candidate: {
      always: [
        { guard: 'isFollower', target: 'follower' },
        { guard: 'isPreCandidate', target: 'preCandidate' },
        { guard: 'isLeader', target: 'leader' },
      ],
      on: {
        TICK: { actions: 'tickElection' },
        MESSAGE: { actions: 'stepMessages' },
        CAMPAIGN: { actions: 'campaign' },
        PROPOSE: { actions: 'dropProposal' },
        READ_INDEX: { actions: 'dropReadIndex' },
      },
    },
    leader: {
      always: [
        { guard: 'isFollower', target: 'follower' },
        { guard: 'isPreCandidate', target: 'preCandidate' },
        { guard: 'isCandidate', target: 'candidate' },
      ],
      on: {
        TICK: { actions: 'tickHeartbeat' },
        MESSAGE: { actions: 'stepMessages' },
        PROPOSE: { actions: 'appendProposal' },
        READ_INDEX: { actions: 'confirmReadIndex' },
        TRANSFER_LEADER: { actions: 'transferLeader' },
        REPORT_UNREACHABLE: { actions: 'reportUnreachable' },
        REPORT_SNAPSHOT: { actions: 'reportSnapshot' },
      },
    },
  },
});

/** `actor` runs the machine with createActor (production); `pure` folds xstate's transition(). */
export type RaftRoleDriverMode = 'actor' | 'pure';

/** Drives the role machine one way or the other behind one interface. */
export class RaftRoleDriver {
  readonly core: RaftCore;
  private snapshot: SnapshotFrom<typeof raftRoleMachine>;
  private readonly actor: Actor<typeof raftRoleMachine> | undefined;

  constructor(core: RaftCore, mode: RaftRoleDriverMode) {
    this.core = core;
    if (mode === 'actor') {
      this.actor = createActor(raftRoleMachine, { input: { core } });
      // With an error observer xstate does not rethrow asynchronously; send() rethrows instead.
      this.actor.subscribe({ error: () => undefined });
      this.actor.start();
      this.snapshot = this.actor.getSnapshot();
    } else {
      this.actor = undefined;
      [this.snapshot] = initialTransition(raftRoleMachine, { core });
    }
    this.checkHealthy();
  }

  /** Delivers one event; rethrows at once any invariant failure raised inside an action. */
  send(event: RaftRoleEvent): void {
    if (this.actor) {
      this.actor.send(event);
      this.snapshot = this.actor.getSnapshot();
    } else {
      [this.snapshot] = transition(raftRoleMachine, this.snapshot, event);
    }
    this.checkHealthy();
  }

  /** The machine's current state node, which always equals the core's role between events. */
  role(): RaftRole {
    return this.snapshot.value as RaftRole;
  }

  lastConfState(): RaftRoleContext['confState'] {
    return this.snapshot.context.confState;
  }

  stop(): void {
    this.actor?.stop();
  }

  private checkHealthy(): void {
    if (this.snapshot.status === 'error') throw this.snapshot.error;
    if (this.snapshot.value !== this.core.role) {
      throw new Error(`role machine in state ${String(this.snapshot.value)} but core role is ${this.core.role}`);
    }
  }
}
