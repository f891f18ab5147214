import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TransitionPrinter } from '../../actors/inspect/relay.js';

const actor = (sessionId: string, name: string) => ({ type: '@xstate.actor', sessionId, name });
const snapshot = (sessionId: string, value: string, event: string, context: Record<string, unknown> = {}) => ({
  type: '@xstate.snapshot',
  sessionId,
  event: { type: event },
  snapshot: { status: 'active', value, context },
});

test('tsetcd inspect prints one line per state change: member, term, from -> to and the event', () => {
  const printer = new TransitionPrinter();
  const lines = [
    actor('infra2/mitb9k2s/x:0', 'raftRole'),
    snapshot('infra2/mitb9k2s/x:0', 'follower', 'xstate.init', { term: 1 }),
    snapshot('infra2/mitb9k2s/x:0', 'follower', 'TICK', { term: 1 }),
    snapshot('infra2/mitb9k2s/x:0', 'preCandidate', 'ELECTION_TIMEOUT', { term: 1 }),
    snapshot('infra2/mitb9k2s/x:0', 'candidate', 'PRE_VOTE_WON', { term: 2 }),
    { type: '@xstate.event', sessionId: 'infra2/mitb9k2s/x:0', event: { type: 'VOTE_WON' } },
    snapshot('infra2/mitb9k2s/x:0', 'leader', 'VOTE_WON', { term: 2 }),
    actor('infra2/mitb9k2s/x:1', 'memberLifecycle'),
    snapshot('infra2/mitb9k2s/x:1', 'serving', 'STARTED', { removed: false }),
  ].map((event) => printer.lineFor(event));
  assert.deepEqual(
    lines.filter((line) => line !== undefined),
    [
      'infra2 term 1: follower (xstate.init)',
      'infra2 term 1: follower -> preCandidate (ELECTION_TIMEOUT)',
      'infra2 term 2: preCandidate -> candidate (PRE_VOTE_WON)',
      'infra2 term 2: candidate -> leader (VOTE_WON)',
      'infra2 memberLifecycle: serving (STARTED)',
    ],
  );
});
