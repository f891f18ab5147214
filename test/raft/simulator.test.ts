import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RawNode } from '../../machines/raw-node.js';
import { MemoryStorage } from '../../src/raft/storage.js';
import { EntryType, MessageType } from '../../src/raft/types.js';
import { confStateOf, text } from './harness.js';
import { SafetyChecker } from './sim-checkers.js';
import {
  type SimulationOptions,
  type SimulationResult,
  type SimulationStats,
  optionsForSeed,
  simulate,
} from './simulator.js';

// RAFT_SIM_SEED=n replays one seed and prints its whole trace; RAFT_SIM_SEEDS=n widens the sweep
// and RAFT_SIM_FIRST_SEED=n shifts it. See test/raft/README.md.
const replaySeed = process.env.RAFT_SIM_SEED === undefined ? undefined : Number(process.env.RAFT_SIM_SEED);
const seedCount = Number(process.env.RAFT_SIM_SEEDS ?? 1000);
const firstSeed = Number(process.env.RAFT_SIM_FIRST_SEED ?? 1);

function failureReport(result: SimulationResult): string {
  const seed = result.seed;
  return (
    `simulation failed for seed ${seed} (replay: RAFT_SIM_SEED=${seed} node --test dist/test/raft/simulator.test.js)\n` +
    `  ${result.failure}\n  last events:\n    ${result.trace.join('\n    ')}`
  );
}

/** The faults and client paths the sweep must exercise somewhere, or it proves nothing. */
const statNames: (keyof SimulationStats)[] = [
  'dropped',
  'duplicated',
  'longDelayed',
  'cut',
  'partitions',
  'oneWayPartitions',
  'heals',
  'crashes',
  'tornCrashes',
  'unsyncedWritesLost',
  'slowFsyncs',
  'compactions',
  'snapshotsInstalled',
  'transfers',
  'writesAcked',
  'readsServed',
];

if (replaySeed !== undefined) {
  test(`simulation seed ${replaySeed} replays`, () => {
    const result = simulate(optionsForSeed(replaySeed, Number.MAX_SAFE_INTEGER));
    console.log(result.trace.join('\n'));
    console.log(JSON.stringify(result.stats));
    if (result.failure !== undefined) assert.fail(failureReport(result));
  });
} else {
  test(`simulated clusters stay safe under faults and recover once healed, over ${seedCount} seeds`, () => {
    const totals = new Map<keyof SimulationStats, number>(statNames.map((name) => [name, 0]));
    let livenessTicksMax = 0;
    for (let seed = firstSeed; seed < firstSeed + seedCount; seed += 1) {
      const result = simulate(optionsForSeed(seed));
      if (result.failure !== undefined) assert.fail(failureReport(result));
      for (const name of statNames) totals.set(name, (totals.get(name) ?? 0) + result.stats[name]);
      livenessTicksMax = Math.max(livenessTicksMax, result.stats.livenessTicks);
    }
    if (seedCount >= 100) for (const [name, total] of totals) assert.ok(total > 0, `no seed exercised ${name}`);
    console.log(
      `simulator: ${seedCount} seeds from ${firstSeed}; ${JSON.stringify(Object.fromEntries(totals))}; ` +
        `slowest liveness ${livenessTicksMax} ticks`,
    );
  });
}

test('a simulation seed replays exactly, with either machine driver', () => {
  for (const seed of [42, 47]) {
    const first = simulate(optionsForSeed(seed, 500));
    const second = simulate(optionsForSeed(seed, 500));
    assert.deepEqual(second.trace, first.trace);
    assert.deepEqual(second.stats, first.stats);
    assert.ok(first.stats.committedCount > 0, 'the run should commit entries');
  }
});

test('ticks and message batches stepped outside the machine give the same run as TICK and MESSAGE events', () => {
  // Seed 7 runs the pure driver, the others the actor; 3 and 11 include membership changes.
  for (const seed of [3, 7, 11, 42, 47]) {
    const options = { ...optionsForSeed(seed, 2000), membership: seed % 4 === 3 };
    const asEvents = simulate({ ...options, inspected: true });
    const outside = simulate(options);
    assert.equal(outside.failure, undefined);
    assert.deepEqual(outside.trace, asEvents.trace, `seed ${seed}`);
    assert.deepEqual(outside.stats, asEvents.stats, `seed ${seed}`);
    assert.ok(outside.stats.leaderTerms > 0 && outside.stats.committedCount > 0, 'the run should elect and commit');
  }
});

/** Runs seeds of a deliberately broken application until one fails; returns that failure. */
function firstFailure(broken: Partial<SimulationOptions>, seedsMax: number): string | undefined {
  for (let seed = 1; seed <= seedsMax; seed += 1) {
    const result = simulate({ ...optionsForSeed(seed), ...broken });
    if (result.failure !== undefined) return result.failure;
  }
  return undefined;
}

test('the checkers catch an application that replies before its write is durable', () => {
  const failure = firstFailure({ unsafeRepliesBeforeFsync: true }, 1000);
  assert.match(
    failure ?? 'no failure',
    /SafetyViolation: (leader completeness|state machine safety|election safety|acknowledged write lost)/,
  );
});

test('the checkers catch reads served from local state without ReadIndex', () => {
  const failure = firstFailure({ unsafeLocalReads: true }, 200);
  assert.match(failure ?? 'no failure', /SafetyViolation: linearizable read/);
});

// Found by seed 21158 (RAFT_SIM_SEEDS=20000 RAFT_SIM_FIRST_SEED=20001): a torn WAL tail kept the
// entries record of a member's first Ready but not the hard state record after it, so the member
// restarted at term 0 holding an entry of term 1. Rejecting a pre-vote then answered with term 0,
// which send() refuses. The core now starts at the last entry's term when the hard state lags it.
test('a member at term 0 holding an entry of term 1 can reject a pre-vote', () => {
  const storage = MemoryStorage.withConfState(confStateOf([1n, 2n, 3n]));
  storage.append([{ term: 1, index: 1, type: EntryType.normal, data: new Uint8Array(0) }]);
  const node = new RawNode({
    id: 2n,
    storage,
    appliedIndex: 0,
    electionTicks: 10,
    heartbeatTicks: 1,
    preVote: true,
    checkQuorum: false,
    maxEntriesPerMessage: 4,
    maxInflightMessages: 8,
    seed: 1,
    driverMode: 'pure',
  });
  node.step({
    type: MessageType.preVote,
    from: 1n,
    to: 2n,
    term: 2,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
  });
  const [response] = node.ready().messages;
  assert.equal(response?.type, MessageType.preVoteResp);
  assert.equal(response?.reject, true);
  assert.equal(response?.term, 1);
});

// Found by seed 58151: member 1 granted member 2 a vote in term 2, then voted in term 3, whose
// leader committed 3/16; the term 2 grant arrived late and made 2 a stale leader without 3/16.
test('leader completeness binds only leaders of terms after the entry was committed', () => {
  const logUpTo15 = {
    firstIndex: () => 1,
    lastIndex: () => 15,
    term: (i: number) => (i >= 1 && i <= 15 ? 1 : undefined),
  };
  const checker = new SafetyChecker();
  checker.onLeaderElected(3n, 3);
  checker.onApply(3n, { term: 3, index: 16, type: EntryType.normal, data: text('w') }, 'w');
  checker.onLeader(2n, 2, logUpTo15);
  assert.throws(() => checker.onLeader(2n, 4, logUpTo15), /leader completeness/);
});
