/** The member lifecycle machine: every state against every event, and what each state allows. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initialTransition, transition } from 'xstate';
import {
  MemberLifecycle,
  memberLifecycleMachine,
  stopRequested,
  type MemberLifecycleEvent,
  type MemberLifecycleSnapshot,
  type MemberLifecycleState,
} from '../../machines/member-lifecycle.js';

const failure = new Error('wal: fsync failed');
const events: Record<MemberLifecycleEvent['type'], MemberLifecycleEvent> = {
  STARTED: { type: 'STARTED' },
  REMOVED: { type: 'REMOVED' },
  FATAL: { type: 'FATAL', error: failure },
  STOP: { type: 'STOP' },
  STOPPED: { type: 'STOPPED' },
};
type EventType = keyof typeof events;

/** The whole edge set: from each state, the events taken and where they lead; any other is ignored. */
const edges: Record<MemberLifecycleState, Partial<Record<EventType, MemberLifecycleState>>> = {
  starting: { STARTED: 'serving', REMOVED: 'removed', FATAL: 'failed', STOP: 'stopping' },
  serving: { REMOVED: 'removed', FATAL: 'failed', STOP: 'stopping' },
  removed: { FATAL: 'failed', STOP: 'stopping' },
  failed: { FATAL: 'failed', REMOVED: 'failed', STOP: 'stopping' },
  stopping: { FATAL: 'stopping', STOPPED: 'stopped' },
  stopped: {},
};

/** A way into each state from the start. */
const pathTo: Record<MemberLifecycleState, EventType[]> = {
  starting: [],
  serving: ['STARTED'],
  removed: ['REMOVED'],
  failed: ['FATAL'],
  stopping: ['STOP'],
  stopped: ['STOP', 'STOPPED'],
};

function walk(path: EventType[]): MemberLifecycleSnapshot {
  let [snapshot] = initialTransition(memberLifecycleMachine);
  for (const type of path) [snapshot] = transition(memberLifecycleMachine, snapshot, events[type]);
  return snapshot;
}

test('every state takes exactly the events of the edge set, and each leads where the table says', () => {
  for (const [state, taken] of Object.entries(edges) as [
    MemberLifecycleState,
    (typeof edges)[MemberLifecycleState],
  ][]) {
    const from = walk(pathTo[state]);
    assert.equal(from.value, state, `the path ${pathTo[state].join(' ')} leads to ${state}`);
    for (const type of Object.keys(events) as EventType[]) {
      const target = taken[type];
      assert.equal(
        from.can(events[type]),
        target !== undefined,
        `${state} ${target === undefined ? 'ignores' : 'takes'} ${type}`,
      );
      const [next] = transition(memberLifecycleMachine, from, events[type]);
      assert.equal(next.value, target ?? state, `${state} --${type}--> ${target ?? state}`);
    }
  }
});

test('the machine declares no edge the table lacks', () => {
  for (const [state, node] of Object.entries(memberLifecycleMachine.root.states)) {
    const declared = Object.keys(node.config.on ?? {}).sort();
    assert.deepEqual(
      declared,
      Object.keys(edges[state as MemberLifecycleState]).sort(),
      `the events ${state} declares`,
    );
  }
  assert.deepEqual(Object.keys(memberLifecycleMachine.root.states).sort(), Object.keys(edges).sort());
});

test('removal and failure stay in context through the stop, and removal is taken once', () => {
  const removedThenFailed = walk(['REMOVED', 'FATAL']);
  assert.equal(removedThenFailed.value, 'failed');
  assert.equal(removedThenFailed.context.removed, true);
  assert.equal(removedThenFailed.context.fatalError, failure);
  assert.equal(removedThenFailed.can(events.REMOVED), false, 'a member removed before it failed is not removed again');
  const stopping = walk(['FATAL', 'REMOVED', 'STOP']);
  assert.equal(stopping.context.fatalError, failure);
  assert.equal(stopping.context.removed, true);
  assert.equal(walk(['STARTED']).context.fatalError, undefined);
});

test('a stop is requested in stopping and stopped only', () => {
  for (const state of Object.keys(edges) as MemberLifecycleState[]) {
    assert.equal(stopRequested(walk(pathTo[state])), state === 'stopping' || state === 'stopped', state);
  }
});

test('the running lifecycle says which events it took and tells listeners of them', () => {
  const lifecycle = new MemberLifecycle();
  const heard: string[] = [];
  lifecycle.onTaken('REMOVED', () => heard.push('removed'));
  assert.equal(lifecycle.state, 'starting');
  assert.equal(lifecycle.send(events.STARTED), true);
  assert.equal(lifecycle.send(events.STARTED), false, 'serving ignores a second STARTED');
  assert.equal(lifecycle.send(events.REMOVED), true);
  assert.equal(lifecycle.send(events.REMOVED), false);
  assert.deepEqual(heard, ['removed']);
  assert.equal(lifecycle.removed, true);
  assert.equal(lifecycle.stopRequested, false);
  assert.equal(lifecycle.send(events.STOP), true);
  assert.equal(lifecycle.stopRequested, true);
  assert.equal(lifecycle.send(events.FATAL), true);
  assert.equal(lifecycle.fatalError, failure);
  assert.equal(lifecycle.send(events.STOPPED), true);
  assert.equal(lifecycle.state, 'stopped');
  assert.equal(lifecycle.send(events.FATAL), false, 'stopped is final');
});
