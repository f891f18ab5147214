/**
 * A member's inspection callback: turns the XState inspection events of its actors (the role
 * machine, the lifecycle machine, any other) into @statelyai/inspect's events, through that
 * package's createInspector, and hands them to an adapter (actors/inspect/stream.ts sends them on).
 *
 * Session IDs are XState's own prefixed with the member's name and start time: XState numbers
 * actors per thread, so members that are threads of one process, or a member and its restart,
 * would otherwise share them.
 *
 * A macrostep is one event sent to an actor and what follows from it. Role changes are raised
 * events within it (a TICK raises ELECTION_TIMEOUT), so each microstep that changes the state is
 * shown as its own event and snapshot: the inspector then shows follower -> preCandidate with
 * ELECTION_TIMEOUT, not with TICK. A high-rate event (summaries.ts) is held back until its
 * macrostep ends and dropped if nothing in it changed the state or raised a named event.
 */
import { createInspector } from '@statelyai/inspect';
import type { ActorRefLike, AnyEventObject, InspectionEvent } from 'xstate';
import type { MachineInspect } from '../../machines/raft-role.js';
import { isHighRateEvent, summarizeEvent, summarizeSnapshot } from './summaries.js';

/** The separator between the parts of a session ID: member, incarnation, XState's session ID. */
export const sessionSeparator = '/';

/**
 * What a member's session IDs start with: its name, and when this start of it began (base 36
 * milliseconds), so a member that restarts shows up as new sessions rather than old ones going back.
 */
export function inspectionSessionPrefix(member: string, startedAtMs: number): string {
  return `${member}${sessionSeparator}${startedAtMs.toString(36)}`;
}

/** A member's session ID for one of its actors. */
export function inspectionSessionId(prefix: string, xstateSessionId: string): string {
  return `${prefix}${sessionSeparator}${xstateSessionId}`;
}

/** The member a session ID names: what comes before its incarnation and XState's session ID. */
export function memberOfSession(sessionId: string): string {
  const parts = sessionId.split(sessionSeparator);
  return parts.length < 3 ? sessionId : parts.slice(0, -2).join(sessionSeparator);
}

/** What @statelyai/inspect hands its inspection events to (its Adapter, which it does not export by name). */
export type InspectionAdapter = Parameters<typeof createInspector>[0];

/** An inspection event in @statelyai/inspect's wire format. */
export type StatelyInspectionEvent = Parameters<InspectionAdapter['send']>[0];

interface Session {
  id: string;
  machineId: string;
  /** The event that started the macrostep in progress (sent to the actor, not raised by it). */
  currentEvent: AnyEventObject | undefined;
  /** True while currentEvent is a high-rate event its macrostep has not shown yet. */
  held: boolean;
}

type Snapshotted = { status: string; value?: unknown; context?: unknown };

type InspectedActor = ActorRefLike & { id?: string; logic?: { config?: { id?: string } } };

function machineIdOf(actorRef: InspectedActor): string {
  return actorRef.logic?.config?.id ?? actorRef.id ?? actorRef.sessionId;
}

function changesState(transitions: readonly { target?: readonly unknown[] | undefined }[]): boolean {
  return transitions.some((transition) => (transition.target?.length ?? 0) > 0);
}

/**
 * Builds a member's inspection callback over `adapter`, its session IDs starting with
 * `sessionPrefix` (inspectionSessionPrefix); `allEvents` keeps the high-rate events too.
 * It runs inside the machines' send(), so it never throws: a failure goes to `onError` instead.
 */
export function createMemberInspect(
  sessionPrefix: string,
  adapter: InspectionAdapter,
  allEvents: boolean,
  onError: (error: unknown) => void = () => undefined,
): MachineInspect {
  const inspector = createInspector(adapter, { autoStart: false });
  const sessions = new Map<string, Session>();

  const sessionOf = (actorRef: ActorRefLike): Session | undefined => sessions.get(actorRef.sessionId);
  const showEvent = (session: Session, event: AnyEventObject) => inspector.event(session.id, summarizeEvent(event));
  const showSnapshot = (session: Session, snapshot: Snapshotted, event: AnyEventObject) =>
    inspector.snapshot(session.id, summarizeSnapshot(session.machineId, snapshot), { event: summarizeEvent(event) });
  /** Shows the held-back event that started this macrostep, now that the macrostep shows something. */
  const release = (session: Session) => {
    if (!session.held || session.currentEvent === undefined) return;
    showEvent(session, session.currentEvent);
    session.held = false;
  };

  const inspect = (inspection: InspectionEvent) => {
    switch (inspection.type) {
      case '@xstate.actor': {
        const actorRef = inspection.actorRef as InspectedActor;
        const session: Session = {
          id: inspectionSessionId(sessionPrefix, actorRef.sessionId),
          machineId: machineIdOf(actorRef),
          currentEvent: undefined,
          held: false,
        };
        sessions.set(actorRef.sessionId, session);
        // The package reads the definition from `logic`; the session ID is the member's.
        inspector.actor({ sessionId: session.id, logic: actorRef.logic } as unknown as ActorRefLike);
        return;
      }
      case '@xstate.event': {
        const session = sessionOf(inspection.actorRef);
        if (session === undefined) return;
        session.currentEvent = inspection.event;
        session.held = !allEvents && isHighRateEvent(inspection.event.type);
        if (!session.held) showEvent(session, inspection.event);
        return;
      }
      case '@xstate.microstep': {
        const session = sessionOf(inspection.actorRef);
        if (session === undefined) return;
        const raised =
          inspection.event !== session.currentEvent && (allEvents || !isHighRateEvent(inspection.event.type));
        const moved = changesState(inspection._transitions as never);
        if (!raised && !moved) return;
        release(session);
        // The macrostep's own event was shown (or released) already; a raised one is shown here.
        if (raised) showEvent(session, inspection.event);
        if (moved) showSnapshot(session, inspection.snapshot as Snapshotted, inspection.event);
        return;
      }
      case '@xstate.snapshot': {
        const session = sessionOf(inspection.actorRef);
        if (session === undefined) return;
        const held = session.held;
        session.held = false;
        session.currentEvent = undefined;
        if (held) return;
        showSnapshot(session, inspection.snapshot as Snapshotted, inspection.event);
        return;
      }
      case '@xstate.action':
      case '@xstate.transition':
        return;
    }
  };
  return (inspection: InspectionEvent) => {
    try {
      inspect(inspection);
    } catch (error) {
      onError(error);
    }
  };
}
