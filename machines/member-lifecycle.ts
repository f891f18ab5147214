/**
 * A member's lifecycle as an XState v5 machine: starting (the data dir is open and the log is
 * being replayed), serving, removed (it applied its own removal, or a peer refused it as removed,
 * and it stops after a grace period), failed (a fatal error: nothing more is applied or written),
 * stopping (stop() was called: new work is refused while the work in flight finishes) and stopped.
 * The member's parts consult this state instead of keeping flags of their own, and every change
 * is an event the machine takes, so an inspector shows why the member refuses a request.
 *
 * Removal and failure are also kept in context, because a member that stops after either must go
 * on refusing what a removed or failed member refuses.
 */
import { assign, createActor, setup, type Actor, type InspectionEvent, type SnapshotFrom } from 'xstate';

export type MemberLifecycleEvent =
  { type: 'STARTED' } | { type: 'REMOVED' } | { type: 'FATAL'; error: Error } | { type: 'STOP' } | { type: 'STOPPED' };

export interface MemberLifecycleContext {
  /** The latest fatal error; set in `failed`, and kept while the member stops. */
  fatalError: Error | undefined;
  /** True once the member knows it was removed from the cluster. */
  removed: boolean;
}

export type MemberLifecycleState = 'starting' | 'serving' | 'removed' | 'failed' | 'stopping' | 'stopped';

const toFailed = { target: 'failed', actions: 'recordFatal' } as const;
const toRemoved = { target: 'removed', actions: 'recordRemoved' } as const;

export const memberLifecycleMachine = setup({
  types: {
    context: {} as MemberLifecycleContext,
    events: {} as MemberLifecycleEvent,
  },
  actions: {
    recordFatal: assign({
      fatalError: ({ event, context }) => (event.type === 'FATAL' ? event.error : context.fatalError),
    }),
    recordRemoved: assign({ removed: true }),
  },
  guards: {
    notRemovedYet: ({ context }) => !context.removed,
  },
}).createMachine({
  id: 'memberLifecycle',
  context: { fatalError: undefined, removed: false },
  initial: 'starting',
  states: {
    // A member replaying its log may apply its own removal, or fail, before it serves.
    starting: { on: { STARTED: 'serving', REMOVED: toRemoved, FATAL: toFailed, STOP: 'stopping' } },
    serving: { on: { REMOVED: toRemoved, FATAL: toFailed, STOP: 'stopping' } },
    removed: { on: { FATAL: toFailed, STOP: 'stopping' } },
    // A failed member still learns of its removal (a peer may refuse it), once.
    failed: {
      on: {
        FATAL: { actions: 'recordFatal' },
        REMOVED: { guard: 'notRemovedYet', actions: 'recordRemoved' },
        STOP: 'stopping',
      },
    },
    // A failure while stopping is recorded; the stop goes on.
    stopping: { on: { FATAL: { actions: 'recordFatal' }, STOPPED: 'stopped' } },
    stopped: { type: 'final' },
  },
});

export type MemberLifecycleSnapshot = SnapshotFrom<typeof memberLifecycleMachine>;

/** True once stop() was called: from then on nothing new is accepted. */
export function stopRequested(snapshot: MemberLifecycleSnapshot): boolean {
  return snapshot.value === 'stopping' || snapshot.value === 'stopped';
}

/** Runs the lifecycle machine for one member (createActor) and answers what its state allows. */
export class MemberLifecycle {
  private readonly actor: Actor<typeof memberLifecycleMachine>;
  private snapshot: MemberLifecycleSnapshot;
  private readonly listeners = new Map<MemberLifecycleEvent['type'], (() => void)[]>();

  /** `inspect`, when given, sees every event and snapshot of the actor. */
  constructor(inspect?: (event: InspectionEvent) => void) {
    this.actor = createActor(memberLifecycleMachine, inspect === undefined ? {} : { inspect });
    // With an error observer xstate does not rethrow asynchronously; send() sees the error instead.
    this.actor.subscribe({ error: () => undefined });
    this.actor.start();
    this.snapshot = this.actor.getSnapshot();
  }

  /** Delivers `event`; false when the current state does not take it (it is then ignored). */
  send(event: MemberLifecycleEvent): boolean {
    if (!this.snapshot.can(event)) return false;
    this.actor.send(event);
    this.snapshot = this.actor.getSnapshot();
    if (this.snapshot.status === 'error') throw this.snapshot.error;
    for (const listener of this.listeners.get(event.type) ?? []) listener();
    return true;
  }

  get state(): MemberLifecycleState {
    return this.snapshot.value as MemberLifecycleState;
  }

  /** True once stop() was called. */
  get stopRequested(): boolean {
    return stopRequested(this.snapshot);
  }

  /** True while the member steps Raft messages: neither removed, failed nor stopping. */
  get acceptsRaftMessages(): boolean {
    return this.snapshot.value === 'starting' || this.snapshot.value === 'serving';
  }

  get fatalError(): Error | undefined {
    return this.snapshot.context.fatalError;
  }

  get removed(): boolean {
    return this.snapshot.context.removed;
  }

  /** Calls `listener` after each event of type `type` the machine takes (REMOVED is taken once at most). */
  onTaken(type: MemberLifecycleEvent['type'], listener: () => void): void {
    const listeners = this.listeners.get(type) ?? [];
    listeners.push(listener);
    this.listeners.set(type, listeners);
  }
}
