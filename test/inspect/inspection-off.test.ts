/**
 * Without --inspect-url a member inspects nothing: no stream is started and its machines' actors
 * are created with no inspect callback, so XState builds no inspection events for them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AnyActorRef } from 'xstate';
import { MemoryStorage, RawNode } from '../../machines/raw-node.js';
import { MemberLifecycle } from '../../machines/member-lifecycle.js';
import { loadConfig } from '../../src/config/config.js';
import { startInspectionIfAsked } from '../../actors/inspect/member-inspection.js';
import { createLogger } from '../../actors/shared/logger.js';
import { confStateOf } from '../raft/harness.js';

/** The XState actor behind a role machine driver or a lifecycle, reached past their private fields. */
function actorOf(owner: object): AnyActorRef & { options: { inspect?: unknown } } {
  const direct = (owner as { actor?: unknown }).actor;
  const driver = (owner as { driver?: { actor?: unknown } }).driver;
  const actor = direct ?? driver?.actor;
  assert.ok(actor !== undefined, 'expected an XState actor');
  return actor as AnyActorRef & { options: { inspect?: unknown } };
}

test('a member started without --inspect-url starts no inspection stream', async () => {
  const { config } = loadConfig({ argv: ['--name', 'infra1'], env: {} });
  assert.equal(config.inspectUrl, '');
  assert.equal(config.inspectAllEvents, false);
  assert.equal(await startInspectionIfAsked(config, createLogger('error')), undefined);
});

test('--inspect-url is taken and checked', () => {
  const { config } = loadConfig({ argv: ['--inspect-url', 'ws://127.0.0.1:8080', '--inspect-all-events'], env: {} });
  assert.equal(config.inspectUrl, 'ws://127.0.0.1:8080');
  assert.equal(config.inspectAllEvents, true);
  assert.throws(() => loadConfig({ argv: ['--inspect-url', 'http://127.0.0.1:8080'], env: {} }), /ws:\/\/ or wss:\/\//);
});

test('machines created without an inspect callback give XState none', () => {
  const node = new RawNode({
    id: 1n,
    storage: MemoryStorage.withConfState(confStateOf([1n])),
    appliedIndex: 0,
    electionTicks: 10,
    heartbeatTicks: 1,
    preVote: true,
    checkQuorum: false,
    maxEntriesPerMessage: 64,
    maxInflightMessages: 256,
    seed: 7,
  });
  assert.equal(actorOf(node).options.inspect, undefined);
  assert.equal(actorOf(new MemberLifecycle()).options.inspect, undefined);
});
