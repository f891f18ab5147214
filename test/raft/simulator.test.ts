import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type SimulationOptions, simulate } from './simulator.js';

// RAFT_SIM_SEED=n replays one seed and prints its trace; RAFT_SIM_SEEDS=n widens the sweep.
const replaySeed = process.env.RAFT_SIM_SEED === undefined ? undefined : Number(process.env.RAFT_SIM_SEED);
const seedCount = Number(process.env.RAFT_SIM_SEEDS ?? 200);

function optionsFor(seed: number): SimulationOptions {
  return {
    seed, members: seed % 4 === 0 ? 5 : 3, safetySteps: 600, livenessStepsMax: 400,
    preVote: seed % 2 === 0, checkQuorum: seed % 3 !== 0,
    // Most seeds use xstate's pure transition(); every tenth runs the same machine as an actor.
    driverMode: seed % 10 === 0 ? 'actor' : 'pure',
  };
}

function runSeed(seed: number): void {
  const result = simulate(optionsFor(seed));
  if (result.failure !== undefined) {
    const tail = result.trace.slice(-40).join('\n  ');
    assert.fail(`simulation failed for seed ${seed} (replay with RAFT_SIM_SEED=${seed}): ${result.failure}\n  ${tail}`);
  }
  if (replaySeed !== undefined) console.log(result.trace.join('\n'));
}

test('simulated clusters keep election safety, log matching and committed entries over many seeds', () => {
  const seeds = replaySeed !== undefined ? [replaySeed] : Array.from({ length: seedCount }, (_, i) => i + 1);
  for (const seed of seeds) runSeed(seed);
});

test('a simulation seed replays exactly', () => {
  const first = simulate(optionsFor(42));
  const second = simulate(optionsFor(42));
  assert.deepEqual(second.trace, first.trace);
  assert.equal(second.committedCount, first.committedCount);
  assert.ok(first.committedCount > 0, 'the run should commit entries');
});
