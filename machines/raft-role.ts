/**
 * Raft roles as an XState v5 machine. follower, preCandidate, candidate and leader are state
 * nodes, and the role changes only by a named event that the current state may take:
 * ELECTION_TIMEOUT and CAMPAIGN start an election (a pre-vote first when enabled, unless our own
 * vote is a quorum), PRE_VOTE_WON and VOTE_WON advance it, PRE_VOTE_LOST, VOTE_LOST, LEADER_SEEN,
 * HIGHER_TERM, QUORUM_LOST and DEMOTED step down to follower, and TIMEOUT_NOW starts a
 * leadership transfer's election. So the graph holds Raft's edges and no others (no leader ->
 * candidate, no follower -> leader; test/raft/role-machine.test.ts pins the edge set), and an
 * inspector shows why each change happened.
 *
 * Each state's entry actions do that role's work (becomeFollower, becomeCandidate, ... in
 * src/raft/raft.ts), HIGHER_TERM's transition adopts the new term, and each state binds its own
 * handlers for TICK, MESSAGE, PROPOSE, ... (etcd's stepFollower, stepCandidate, stepLeader). The
 * handlers are plain functions over the core; one that detects a role change returns it and the
 * action records it in context. The root's eventless transition (no target) raises it at once as
 * its named event, and the current state's transition for that event picks the next state. A
 * MESSAGE batch stops at the message that changed the role; the rest waits in context and the
 * next state's entry raises it as a new MESSAGE, after any role change of the entry's own (a lone
 * voter's candidacy wins at once), so every message is stepped by the role current then.
 *
 * Actions only assign and raise. The core record is held by reference and mutated in place: the
 * machine is its only owner and snapshots are never revisited, which keeps one event per tick or
 * message batch cheap. What a caller reads back after an event (why a proposal was dropped, the
 * ConfState of a conf change) is a context field; messages and read states stay in the core's
 * outbox for the next Ready.
 */
import {
  and,
  assign,
  createActor,
  enqueueActions,
  initialTransition,
  raise,
  setup,
  transition,
  type Actor,
  type InspectionEvent,
  type SnapshotFrom,
} from 'xstate';
import { assert } from '../src/lib/assert.js';
import type { ConfChange } from '../src/raft/conf-change.js';
import { droppedReasons } from '../src/raft/errors.js';
import {
  type RaftCore,
  type RoleChange,
  type RoleStep,
  adoptTerm,
  applyConfChange,
  becomeCandidate,
  becomeFollower,
  becomeLeader,
  becomePreCandidate,
  forwardToLeader,
  leaderAfterConfChange,
  leaderPropose,
  leaderReadIndex,
  leavesMessageToNewRole,
  mayCampaign,
  message,
  startsWithPreVote,
  stepCandidate,
  stepFollower,
  stepLeader,
  stepMessage,
  stepPreCandidate,
  tickElection,
  tickHeartbeat,
} from '../src/raft/raft.js';
import {
  type ConfState,
  type Entry,
  type Message,
  MessageType,
  type NodeId,
  type RaftRole,
  noneId,
} from '../src/raft/types.js';

/** What a caller sends the machine (RawNode does); role changes are raised by the machine alone. */
export type RaftRoleCommand =
  | { type: 'TICK' }
  | { type: 'MESSAGE'; messages: readonly Message[] }
  | { type: 'PROPOSE'; entries: Entry[] }
  | { type: 'CAMPAIGN' }
  | { type: 'READ_INDEX'; requestCtx: Uint8Array }
  | { type: 'TRANSFER_LEADER'; to: NodeId }
  | { type: 'REPORT_UNREACHABLE'; id: NodeId }
  | { type: 'REPORT_SNAPSHOT'; id: NodeId; rejected: boolean }
  | { type: 'APPLY_CONF_CHANGE'; change: ConfChange };

export type RaftRoleEvent = RaftRoleCommand | RoleChange;

export interface RaftRoleContext {
  core: RaftCore;
  /** The ConfState produced by the latest APPLY_CONF_CHANGE, for the caller to read back. */
  confState: ConfState | undefined;
  /** Why the latest PROPOSE, READ_INDEX or TRANSFER_LEADER was dropped; undefined if it was taken. */
  droppedReason: string | undefined;
  /** A role change an action detected, until it is raised (within the same macrostep). */
  roleChange: RoleChange | undefined;
  /** The rest of a MESSAGE batch after a role change, until the next state's entry raises it. */
  unsteppedMessages: readonly Message[];
  /** The named event that entered the current role (VOTE_WON, HIGHER_TERM, ...): why the role is what it is. */
  enteredBy: string;
}

type EventOf<T extends RaftRoleEvent['type']> = Extract<RaftRoleEvent, { type: T }>;
type Outputs = Partial<Omit<RaftRoleContext, 'core'>>;

const noMessages: readonly Message[] = Object.freeze([]);

/** An action for events of type `type`: `work` runs over the core and returns context outputs. */
function on<T extends RaftRoleEvent['type']>(type: T, work: (core: RaftCore, event: EventOf<T>) => Outputs | void) {
  return assign<RaftRoleContext, RaftRoleEvent, undefined, RaftRoleEvent, never>(({ context, event }) => {
    assert(event.type === type, () => `action for ${type} ran on ${event.type}`);
    return work(context.core, event as EventOf<T>) ?? {};
  });
}

/** An entry action: `work` runs over the core, given the event that entered the state, which it notes. */
function onEntry(work: (core: RaftCore, event: RaftRoleEvent) => Outputs | void) {
  return assign<RaftRoleContext, RaftRoleEvent, undefined, RaftRoleEvent, never>(({ context, event }) => ({
    enteredBy: event.type,
    ...work(context.core, event),
  }));
}

/**
 * An entry's last action: raises the entry's own role change if it recorded one (a lone voter's
 * candidacy wins at once), then the rest of the batch that led here, in that order, so the rest
 * is stepped by the role that is current once every change has been taken.
 */
const raiseRecorded = enqueueActions<
  RaftRoleContext,
  RaftRoleEvent,
  undefined,
  RaftRoleEvent,
  never,
  never,
  never,
  never,
  never
>(({ context, enqueue }) => {
  const { roleChange, unsteppedMessages } = context;
  if (roleChange !== undefined) {
    enqueue.assign({ roleChange: undefined });
    enqueue.raise(roleChange);
  }
  if (unsteppedMessages.length > 0) {
    enqueue.assign({ unsteppedMessages: noMessages });
    enqueue.raise({ type: 'MESSAGE', messages: unsteppedMessages });
  }
});

/** Raises the role change a transition's action recorded (see the root's eventless transition). */
const raiseRoleChange = raise<RaftRoleContext, RaftRoleEvent, RaftRoleEvent, undefined>(({ context }) => {
  assert(context.roleChange !== undefined, 'raising a role change that was not recorded');
  return context.roleChange;
});

/** A role's MESSAGE handler: steps the batch with `roleStep` until a message changes the role. */
function stepBatch(roleStep: RoleStep) {
  return on('MESSAGE', (core, event) => {
    const messages = event.messages;
    for (let i = 0; i < messages.length; i += 1) {
      const roleChange = stepMessage(core, messages[i] as Message, roleStep);
      if (roleChange === undefined) continue;
      return { roleChange, unsteppedMessages: messages.slice(leavesMessageToNewRole(roleChange) ? i : i + 1) };
    }
    return undefined;
  });
}

/** The leader a follower starts with: the one a HIGHER_TERM or LEADER_SEEN message came from. */
function leaderOf(event: RaftRoleEvent): NodeId {
  return event.type === 'HIGHER_TERM' || event.type === 'LEADER_SEEN' ? event.leaderId : noneId;
}

function proposalMessage(entries: Entry[]): Message {
  return message({ type: MessageType.prop, entries });
}

function readIndexMessage(requestCtx: Uint8Array): Message {
  return message({ type: MessageType.readIndex, entries: [{ term: 0, index: 0, type: 0, data: requestCtx }] });
}

function transferMessage(core: RaftCore, to: NodeId): Message {
  return message({ type: MessageType.transferLeader, from: to, to: core.id });
}

/** Each role's step function: the one its state's MESSAGE action steps a batch with. */
const roleSteps: Readonly<Record<RaftRole, RoleStep>> = {
  follower: stepFollower,
  preCandidate: stepPreCandidate,
  candidate: stepCandidate,
  leader: stepLeader,
};

export const raftRoleMachine = setup({
  types: {
    context: {} as RaftRoleContext,
    events: {} as RaftRoleEvent,
    input: {} as { core: RaftCore },
  },
  guards: {
    mayCampaign: ({ context }) => mayCampaign(context.core),
    startsWithPreVote: ({ context }) => startsWithPreVote(context.core),
    roleChangeRecorded: ({ context }) => context.roleChange !== undefined,
  },
  actions: {
    becomeFollower: onEntry((core, event) => becomeFollower(core, leaderOf(event))),
    becomePreCandidate: onEntry((core) => becomePreCandidate(core)),
    becomeCandidate: onEntry((core, event) => ({ roleChange: becomeCandidate(core, event.type === 'TIMEOUT_NOW') })),
    becomeLeader: onEntry((core) => becomeLeader(core)),
    adoptTerm: on('HIGHER_TERM', (core, event) => adoptTerm(core, event.term)),
    raiseRoleChange,
    forgetRoleChange: assign({ roleChange: undefined }),
    raiseRecorded,
    tickElection: on('TICK', (core) => ({ roleChange: tickElection(core) })),
    tickHeartbeat: on('TICK', (core) => ({ roleChange: tickHeartbeat(core) })),
    stepFollowerMessages: stepBatch(stepFollower),
    stepPreCandidateMessages: stepBatch(stepPreCandidate),
    stepCandidateMessages: stepBatch(stepCandidate),
    stepLeaderMessages: stepBatch(stepLeader),
    forwardProposal: on('PROPOSE', (core, event) => ({
      droppedReason: forwardToLeader(core, proposalMessage(event.entries)),
    })),
    appendProposal: on('PROPOSE', (core, event) => ({
      droppedReason: leaderPropose(core, proposalMessage(event.entries)),
    })),
    dropProposal: on('PROPOSE', () => ({ droppedReason: droppedReasons.electionInProgress })),
    forwardReadIndex: on('READ_INDEX', (core, event) => ({
      droppedReason: forwardToLeader(core, readIndexMessage(event.requestCtx)),
    })),
    confirmReadIndex: on('READ_INDEX', (core, event) => ({
      droppedReason: leaderReadIndex(core, readIndexMessage(event.requestCtx)),
    })),
    dropReadIndex: on('READ_INDEX', () => ({ droppedReason: droppedReasons.electionInProgress })),
    forwardTransfer: on('TRANSFER_LEADER', (core, event) => ({
      droppedReason: forwardToLeader(core, transferMessage(core, event.to)),
    })),
    startTransfer: on('TRANSFER_LEADER', (core, event) => {
      stepLeader(core, transferMessage(core, event.to));
      return { droppedReason: undefined };
    }),
    reportUnreachable: on('REPORT_UNREACHABLE', (core, event) =>
      stepLeader(core, message({ type: MessageType.unreachable, from: event.id, to: core.id })),
    ),
    reportSnapshot: on('REPORT_SNAPSHOT', (core, event) =>
      stepLeader(core, message({ type: MessageType.snapStatus, from: event.id, to: core.id, reject: event.rejected })),
    ),
    applyConfChange: on('APPLY_CONF_CHANGE', (core, event) => ({ confState: applyConfChange(core, event.change) })),
    applyConfChangeAsLeader: on('APPLY_CONF_CHANGE', (core, event) => {
      const confState = applyConfChange(core, event.change);
      return { confState, roleChange: leaderAfterConfChange(core) };
    }),
  },
}).createMachine({
  id: 'raftRole',
  context: ({ input }) => ({
    core: input.core,
    confState: undefined,
    droppedReason: undefined,
    roleChange: undefined,
    unsteppedMessages: noMessages,
    enteredBy: 'xstate.init',
  }),
  initial: 'follower',
  // A TICK, MESSAGE or conf change that detected a role change recorded it; this raises it as its
  // named event, which the current state's transition takes. It has no target, so it never
  // changes the role itself. It costs one guard per step, where an enqueueActions after every
  // TICK and MESSAGE (its ten closures per call) cost a 3-member in-memory cluster about a quarter
  // more CPU per proposal.
  always: { guard: 'roleChangeRecorded', actions: ['raiseRoleChange', 'forgetRoleChange'] },
  on: {
    APPLY_CONF_CHANGE: { actions: 'applyConfChange' },
  },
  states: {
    follower: {
      entry: ['becomeFollower', 'raiseRecorded'],
      on: {
        TICK: { actions: 'tickElection' },
        MESSAGE: { actions: 'stepFollowerMessages' },
        CAMPAIGN: [
          { guard: and(['mayCampaign', 'startsWithPreVote']), target: 'preCandidate' },
          { guard: 'mayCampaign', target: 'candidate' },
        ],
        ELECTION_TIMEOUT: [{ guard: 'startsWithPreVote', target: 'preCandidate' }, { target: 'candidate' }],
        TIMEOUT_NOW: { target: 'candidate' },
        HIGHER_TERM: { target: 'follower', reenter: true, actions: 'adoptTerm' },
        PROPOSE: { actions: 'forwardProposal' },
        READ_INDEX: { actions: 'forwardReadIndex' },
        TRANSFER_LEADER: { actions: 'forwardTransfer' },
      },
    },
    preCandidate: {
      entry: ['becomePreCandidate', 'raiseRecorded'],
      on: {
        TICK: { actions: 'tickElection' },
        MESSAGE: { actions: 'stepPreCandidateMessages' },
        CAMPAIGN: [
          { guard: and(['mayCampaign', 'startsWithPreVote']), target: 'preCandidate', reenter: true },
          { guard: 'mayCampaign', target: 'candidate' },
        ],
        ELECTION_TIMEOUT: [
          { guard: 'startsWithPreVote', target: 'preCandidate', reenter: true },
          { target: 'candidate' },
        ],
        PRE_VOTE_WON: { target: 'candidate' },
        PRE_VOTE_LOST: { target: 'follower' },
        LEADER_SEEN: { target: 'follower' },
        HIGHER_TERM: { target: 'follower', actions: 'adoptTerm' },
        PROPOSE: { actions: 'dropProposal' },
        READ_INDEX: { actions: 'dropReadIndex' },
      },
    },
    candidate: {
      // A lone voter's own vote is a quorum: becomeCandidate then records VOTE_WON.
      entry: ['becomeCandidate', 'raiseRecorded'],
      on: {
        TICK: { actions: 'tickElection' },
        MESSAGE: { actions: 'stepCandidateMessages' },
        CAMPAIGN: [
          { guard: and(['mayCampaign', 'startsWithPreVote']), target: 'preCandidate' },
          { guard: 'mayCampaign', target: 'candidate', reenter: true },
        ],
        ELECTION_TIMEOUT: [
          { guard: 'startsWithPreVote', target: 'preCandidate' },
          { target: 'candidate', reenter: true },
        ],
        VOTE_WON: { target: 'leader' },
        VOTE_LOST: { target: 'follower' },
        LEADER_SEEN: { target: 'follower' },
        HIGHER_TERM: { target: 'follower', actions: 'adoptTerm' },
        PROPOSE: { actions: 'dropProposal' },
        READ_INDEX: { actions: 'dropReadIndex' },
      },
    },
    leader: {
      entry: ['becomeLeader', 'raiseRecorded'],
      on: {
        TICK: { actions: 'tickHeartbeat' },
        MESSAGE: { actions: 'stepLeaderMessages' },
        HIGHER_TERM: { target: 'follower', actions: 'adoptTerm' },
        QUORUM_LOST: { target: 'follower' },
        DEMOTED: { target: 'follower' },
        PROPOSE: { actions: 'appendProposal' },
        READ_INDEX: { actions: 'confirmReadIndex' },
        TRANSFER_LEADER: { actions: 'startTransfer' },
        REPORT_UNREACHABLE: { actions: 'reportUnreachable' },
        REPORT_SNAPSHOT: { actions: 'reportSnapshot' },
        APPLY_CONF_CHANGE: { actions: 'applyConfChangeAsLeader' },
      },
    },
  },
});

/** `actor` runs the machine with createActor (production); `pure` folds xstate's transition(). */
export type RaftRoleDriverMode = 'actor' | 'pure';

/** An XState inspection callback, given from outside (actors/) so the machine itself stays pure. */
export type MachineInspect = (event: InspectionEvent) => void;

/** Drives the role machine one way or the other behind one interface. */
export class RaftRoleDriver {
  readonly core: RaftCore;
  private snapshot: SnapshotFrom<typeof raftRoleMachine>;
  private readonly actor: Actor<typeof raftRoleMachine> | undefined;
  private readonly inspected: boolean;

  /** `inspect`, when given, sees every event and snapshot of the actor (actor mode only). */
  constructor(core: RaftCore, mode: RaftRoleDriverMode, inspect?: MachineInspect) {
    this.core = core;
    this.inspected = inspect !== undefined;
    if (mode === 'actor') {
      // Without an inspector no inspect option is passed at all, so xstate has no observer to call.
      this.actor = createActor(
        raftRoleMachine,
        inspect === undefined ? { input: { core } } : { input: { core }, inspect },
      );
      // With an error observer xstate does not rethrow asynchronously; send() rethrows instead.
      this.actor.subscribe({ error: () => undefined });
      this.actor.start();
      this.snapshot = this.actor.getSnapshot();
    } else {
      this.actor = undefined;
      [this.snapshot] = initialTransition(raftRoleMachine, { core });
    }
    this.checkSettled();
  }

  /**
   * One tick. Uninspected, a tick that changes no role is the role's plain tick function over the
   * core (the one its state's TICK action calls), and only the role change one detects, an
   * ELECTION_TIMEOUT or QUORUM_LOST, is a machine event: the same transition the raised event
   * takes inside a TICK's macrostep, without a macrostep for each of the ten ticks a second that
   * change nothing. Inspected, every tick is a TICK event, so an inspector sees what it always saw.
   */
  tick(): void {
    if (this.inspected) return this.send({ type: 'TICK' });
    const roleChange = this.role() === 'leader' ? tickHeartbeat(this.core) : tickElection(this.core);
    if (roleChange !== undefined) this.take(roleChange);
  }

  /**
   * Steps a batch of peer messages. Uninspected, they are stepped by the current role's plain step
   * function until one changes the role, as the state's MESSAGE action does; that change is the
   * machine's event, and the rest of the batch a MESSAGE event to the role it led to, as the
   * machine's entry raises them. Inspected, the batch is one MESSAGE event.
   */
  stepMessages(messages: readonly Message[]): void {
    if (this.inspected) return this.send({ type: 'MESSAGE', messages });
    const roleStep = roleSteps[this.role()];
    for (let i = 0; i < messages.length; i += 1) {
      const roleChange = stepMessage(this.core, messages[i] as Message, roleStep);
      if (roleChange === undefined) continue;
      this.take(roleChange);
      const rest = messages.slice(leavesMessageToNewRole(roleChange) ? i : i + 1);
      if (rest.length > 0) this.send({ type: 'MESSAGE', messages: rest });
      return;
    }
  }

  /** Delivers one event; rethrows at once any invariant failure raised inside an action. */
  send(event: RaftRoleCommand): void {
    this.take(event);
  }

  /** A command, or a role change detected outside the machine (tick, stepMessages), as one event. */
  private take(event: RaftRoleEvent): void {
    if (this.actor) {
      this.actor.send(event);
      this.snapshot = this.actor.getSnapshot();
    } else {
      [this.snapshot] = transition(raftRoleMachine, this.snapshot, event);
    }
    this.checkSettled();
  }

  /** The machine's current state node: the role. */
  role(): RaftRole {
    return this.snapshot.value as RaftRole;
  }

  lastConfState(): ConfState | undefined {
    return this.snapshot.context.confState;
  }

  /** Why the latest PROPOSE, READ_INDEX or TRANSFER_LEADER was dropped; undefined if it was taken. */
  lastDroppedReason(): string | undefined {
    return this.snapshot.context.droppedReason;
  }

  /** The named event that entered the current role ('xstate.init' for the role a member starts in). */
  enteredBy(): string {
    return this.snapshot.context.enteredBy;
  }

  stop(): void {
    this.actor?.stop();
  }

  /** Between events every role change has been taken and every message of a batch stepped. */
  private checkSettled(): void {
    if (this.snapshot.status === 'error') throw this.snapshot.error;
    const { roleChange, unsteppedMessages } = this.snapshot.context;
    assert(roleChange === undefined, () => `role change ${roleChange?.type} was recorded but not raised`);
    assert(
      unsteppedMessages.length === 0,
      () =>
        `${unsteppedMessages.length} messages of a batch were left unstepped in state ${String(this.snapshot.value)}`,
    );
  }
}
