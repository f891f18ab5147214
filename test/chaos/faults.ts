/**
 * The chaos run's faults: a plan drawn from the seed (when, which kind, on the leader or a
 * follower, for how long), carried out one fault at a time by pluggable injectors. An injector
 * breaks something on one member, holds it for the planned time and heals it; new kinds
 * (partitions, failpoints, disk faults) are added to `faultInjectors` and the plan draws them.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Prng } from '../../src/lib/prng.js';
import { clearFailpoint, setFailpoint, type FailpointName } from '../support/failpoints.js';
import type { ChaosMode, ChaosTarget } from './target.js';

/** Pause before the first fault, so the workload and watchers are under way. */
const firstFaultMsMin = 1_500;
/** Time between one fault's heal and the next fault: a random span in [gapMsMin, gapMsMin + gapMsSpread). */
const gapMsMin = 1_000;
const gapMsSpread = 2_000;
/** Faults end this long before the run does, so the cluster is whole for the final reads. */
const quietEndMs = 2_000;
/** Faults a plan may hold, whatever the run's length. */
export const faultsPerRunMax = 10_000;

/** One planned fault; the member is chosen when it runs (who leads is known only then). */
export interface PlannedFault {
  readonly atMs: number;
  readonly kind: string;
  readonly role: 'leader' | 'follower';
  /** Which follower, as a number the target reduces modulo the followers there are. */
  readonly followerPick: number;
  readonly holdMs: number;
  /** Which variant of the fault (e.g. which failpoint), as a number the injector reduces. */
  readonly variant: number;
}

/** Writes one line of the run's log, prefixed with the time since the start. */
export type Note = (line: string) => void;

export interface FaultInjector {
  /** Short name in reports: 'kill9', 'pause', ... */
  readonly kind: string;
  readonly modes: readonly ChaosMode[];
  /** How long the fault is held: a random span in [holdMsMin, holdMsMin + holdMsSpread). */
  readonly holdMsMin: number;
  readonly holdMsSpread: number;
  /** Whether a run draws it when no kinds are named (--faults); partitions need root, so they are opt-in. */
  readonly byDefault: boolean;
  /** Breaks member `index`, holds for `holdMs`, heals, and notes each step. */
  inject(target: ChaosTarget, index: number, fault: PlannedFault, note: Note): Promise<void>;
}

/** kill -9 of a member (in single-host mode, of the process), then a restart on its data dir. */
const kill9Restart: FaultInjector = {
  kind: 'kill9',
  modes: ['processes', 'single-host'],
  holdMsMin: 300,
  holdMsSpread: 2_500,
  byDefault: true,
  async inject(target, index, { holdMs }, note) {
    await target.kill9(index);
    note(`kill -9 ${target.scopeOf(index)}, restart in ${holdMs} ms`);
    await sleep(holdMs);
    const startedMs = Date.now();
    await target.restart(index);
    note(`${target.scopeOf(index)} restarted, healthy after ${Date.now() - startedMs} ms`);
  },
};

/** SIGSTOP of a member's process, SIGCONT after the hold: a member that stops answering and comes back. */
const pauseResume: FaultInjector = {
  kind: 'pause',
  modes: ['processes', 'single-host'],
  holdMsMin: 500,
  holdMsSpread: 3_000,
  byDefault: true,
  async inject(target, index, { holdMs }, note) {
    target.pause(index);
    note(`SIGSTOP ${target.scopeOf(index)} for ${holdMs} ms`);
    try {
      await sleep(holdMs);
    } finally {
      target.resume(index);
    }
    note(`SIGCONT ${target.scopeOf(index)}`);
  },
};

/**
 * Failpoints a chaos run sets (see actors/shared/failpoint-names.ts): a crash before or after the
 * Ready is persisted or at the backend commit, and slow fsyncs and applies.
 */
const chaosFailpoints: ReadonlyArray<readonly [FailpointName, string]> = [
  ['raftBeforeSave', 'panic'],
  ['raftAfterSave', 'panic'],
  ['beforeCommit', 'panic'],
  ['walBeforeSync', 'sleep(300)'],
  ['beforeApplyEntry', 'sleep(100)'],
  ['raftBeforeLeaderSend', 'sleep(200)'],
];

/** Sets one failpoint on a member for the hold (a panic ends the member: it is restarted), then clears it. */
const failpoint: FaultInjector = {
  kind: 'failpoint',
  modes: ['processes'],
  holdMsMin: 500,
  holdMsSpread: 2_500,
  byDefault: true,
  async inject(target, index, { holdMs, variant }, note) {
    const endpoint = target.failpointEndpoint(index);
    if (endpoint === undefined) throw new Error('failpoint faults need members started with failpoints on');
    const [name, terms] = chaosFailpoints[variant % chaosFailpoints.length] as readonly [FailpointName, string];
    await setFailpoint(endpoint, name, terms);
    note(`failpoint ${name}=${terms} on ${target.scopeOf(index)} for ${holdMs} ms`);
    await sleep(holdMs);
    if (target.running(index)) {
      await clearFailpoint(endpoint, name);
      note(`failpoint ${name} cleared on ${target.scopeOf(index)}`);
      return;
    }
    const startedMs = Date.now();
    await target.restart(index);
    note(`${target.scopeOf(index)} stopped at ${name}; restarted, healthy after ${Date.now() - startedMs} ms`);
  },
};

/**
 * Network partitions between the members (test/support/partitions.ts: namespaces and nftables,
 * root only): the chosen member isolated, made the bridge between the other two, cut from one
 * other member, or its dialed peer connection to one other member blocked one way; healed after the hold.
 */
const partition: FaultInjector = {
  kind: 'partition',
  modes: ['processes'],
  holdMsMin: 1_000,
  holdMsSpread: 4_000,
  byDefault: false,
  async inject(target, index, { holdMs, variant }, note) {
    const network = target.network();
    if (network === undefined) throw new Error('partition faults need members in network namespaces');
    const name = target.names[index] as string;
    const others = target.names.filter((n) => n !== name);
    const other = others[Math.floor(variant / 4) % others.length] as string;
    const shapes = [
      ['isolate', () => network.isolate(name)],
      ['bridge through', () => network.bridge(name)],
      [`cut from ${other}:`, () => network.cut(name, other)],
      [`block one way to ${other}, from`, () => network.blockOneWay(name, other)],
    ] as const;
    const [label, apply] = shapes[variant % shapes.length] as (typeof shapes)[number];
    await apply();
    note(`partition: ${label} ${name} for ${holdMs} ms (${network.describeBlocks()})`);
    try {
      await sleep(holdMs);
    } finally {
      await network.heal();
    }
    note('partition healed');
  },
};

/** Every injector there is; a run uses those for its mode. */
export const faultInjectors: readonly FaultInjector[] = [kill9Restart, pauseResume, failpoint, partition];

/** The injectors a mode can use: the kinds named, or those drawn by default. */
export function injectorsFor(mode: ChaosMode, kinds?: readonly string[]): FaultInjector[] {
  return faultInjectors.filter(
    (i) => i.modes.includes(mode) && (kinds === undefined ? i.byDefault : kinds.includes(i.kind)),
  );
}

/** The plan for a run of `runMs`: the same seed and injectors give the same plan. */
export function planFaults(seed: number, runMs: number, injectors: readonly FaultInjector[]): PlannedFault[] {
  const prng = new Prng(seed ^ 0x7a3d_11c5);
  const plan: PlannedFault[] = [];
  let atMs = firstFaultMsMin + prng.nextInt(gapMsSpread);
  while (injectors.length > 0 && plan.length < faultsPerRunMax) {
    const injector = prng.pick(injectors);
    const holdMs = injector.holdMsMin + prng.nextInt(injector.holdMsSpread);
    if (atMs + holdMs > runMs - quietEndMs) break;
    plan.push({
      atMs,
      kind: injector.kind,
      role: prng.chance(0.5) ? 'leader' : 'follower',
      followerPick: prng.nextInt(1_000),
      holdMs,
      variant: prng.nextInt(1_000),
    });
    atMs += holdMs + gapMsMin + prng.nextInt(gapMsSpread);
  }
  return plan;
}

/**
 * Carries out `plan` from `startMs` (Date.now() based), one fault at a time: a fault whose time
 * has passed (the previous one took longer than planned) starts at once. Returns the count per kind.
 */
export async function runFaults(
  plan: readonly PlannedFault[],
  injectors: readonly FaultInjector[],
  target: ChaosTarget,
  startMs: number,
  note: Note,
  stopped: () => boolean,
): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const fault of plan) {
    const waitMs = startMs + fault.atMs - Date.now();
    if (waitMs > 0) await sleep(waitMs);
    if (stopped()) break;
    const injector = injectors.find((i) => i.kind === fault.kind);
    if (injector === undefined) throw new Error(`no injector for planned fault kind ${fault.kind}`);
    const index = await chooseMember(target, fault);
    note(`fault ${fault.kind} on the ${fault.role === 'leader' ? 'leader' : 'follower'} ${target.names[index]}`);
    await injector.inject(target, index, fault, note);
    counts.set(fault.kind, (counts.get(fault.kind) ?? 0) + 1);
  }
  return counts;
}

/** The leader, or a follower chosen by the plan; with no agreed leader now, a member by the same pick. */
async function chooseMember(target: ChaosTarget, fault: PlannedFault): Promise<number> {
  const leader = await target.leaderIndex();
  const all = target.names.map((_, i) => i);
  if (leader === undefined) return all[fault.followerPick % all.length] as number;
  if (fault.role === 'leader') return leader;
  const followers = all.filter((i) => i !== leader);
  return followers[fault.followerPick % followers.length] as number;
}
