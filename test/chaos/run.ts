/**
 * One chaos run: a three-member tsetcd cluster, concurrent clients and watchers, and the seeded
 * fault plan; then every operation goes through the linearizability checker and every watch
 * stream through the watch checks. A violation writes the history and the explanation to the
 * output directory.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { EtcdGrpc } from '../support/etcd-grpc.js';
import { checkHistory, type Operation, type Verdict } from '../support/linearizability/checker.js';
import { keysOf, mayWrite } from '../support/linearizability/kv-model.js';
import { writeHistoryOf } from '../support/linearizability/watch-history.js';
import { probeHealth } from '../support/member.js';
import type { MemberCommand } from '../support/sut.js';
import {
  checkWatchRecord,
  resolveHistory,
  resumeFailedPrefix,
  ResumingWatcher,
  type Resolution,
} from '../support/watch-checker.js';
import { injectorsFor, planFaults, runFaults } from './faults.js';
import { startTarget, type ChaosMode, type ChaosTarget } from './target.js';
import { Workload } from './workload.js';

/** Keys live under this prefix; watchers watch all of it. */
const keyPrefix = 'chaos/';
const watchedRange = { key: keyPrefix, rangeEnd: 'chaos0' };
/** The first revision a write makes in a new cluster. */
const firstWriteRevision = 2;
/** gRPC deadline of one client operation. */
const opDeadlineMs = 2_000;
/** How often broken watch streams are looked for and resumed. */
const healIntervalMs = 200;
/** Resumptions one watcher may make in a run (each kill of its member is one or a few). */
const watchResumesPerRunMax = 10_000;
/** Bound on reading the final revision, and on watchers reaching it. */
const settleWaitMs = 30_000;
/** Pause before reading the final revision, for writes whose client gave up but which are still in flight. */
const settlePauseMs = 1_000;
/** Times the final revision is read again until it stops moving. */
const settleRoundsMax = 5;
/** Budget of the linearizability search. */
const checkerMsMax = 60_000;

export interface ChaosOptions {
  readonly seed: number;
  readonly secs: number;
  readonly mode: ChaosMode;
  readonly clients: number;
  readonly keys: number;
  readonly command: MemberCommand;
  /** Fault kinds to draw from; all the mode has when undefined. */
  readonly faultKinds?: readonly string[];
  /** Where a failing run writes its history and explanation. */
  readonly outDir: string;
  /** The harness self-test's broken store: clients answer some gets from a stale cache. */
  readonly staleReads?: boolean;
  readonly print: (line: string) => void;
}

export interface ChaosReport {
  readonly opsRecorded: number;
  /** Operations the checker looked at: answered ones and writes of unknown outcome. */
  readonly opsChecked: number;
  readonly unknownOutcomes: number;
  /** Unknown outcomes by the error's first sentence. */
  readonly unknownReasons: ReadonlyMap<string, number>;
  /** Calls that never left the client (no connection): not operations. */
  readonly notSent: number;
  readonly faults: ReadonlyMap<string, number>;
  readonly watchEvents: number;
  readonly finalRevision: number;
  readonly verdict: Verdict | undefined;
  readonly checkerMs: number;
  readonly violations: readonly string[];
  /** Set when the run wrote its history (on a violation or an inconclusive check). */
  readonly written?: string;
}

/** Runs the cluster, workload, watchers and faults for `secs`, then checks everything. */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  // Times in the log count from the start of the workload, as the plan's do; setup comes before.
  let startMs = Date.now();
  const note = (line: string) =>
    options.print(`[${((Date.now() - startMs) / 1_000).toFixed(2).padStart(7)} s] ${line}`);
  const injectors = injectorsFor(options.mode, options.faultKinds);
  const plan = planFaults(options.seed, options.secs * 1_000, injectors);
  note(
    `plan: ${plan.map((f) => `${(f.atMs / 1_000).toFixed(1)}s ${f.kind}/${f.role}/${f.holdMs}ms`).join(', ') || 'no faults'}`,
  );
  const target = await startTarget(options.mode, options.command, {
    failpoints: injectors.some((i) => i.kind === 'failpoint'),
    partitions: injectors.some((i) => i.kind === 'partition'),
  });
  note(`${options.mode}: ${target.names.map((name, i) => `${name} ${target.endpoints()[i]}`).join(', ')}`);
  const watchers: ResumingWatcher[] = [];
  const violations: string[] = [];
  let healing: Promise<void> = Promise.resolve();
  let running = true;
  try {
    for (const [i, endpoint] of target.endpoints().entries()) {
      const watcher = new ResumingWatcher(`watcher ${i + 1}`, watchedRange, i === 2, watchResumesPerRunMax);
      await watcher.start(endpoint, firstWriteRevision);
      watchers.push(watcher);
    }
    healing = healWatchers(watchers, target, () => running, note);
    const keys = Array.from({ length: options.keys }, (_, i) => `${keyPrefix}k${i}`);
    const workload = new Workload(
      { seed: options.seed, clients: options.clients, keys, opDeadlineMs, staleReads: options.staleReads },
      target.endpoints(),
    );
    const setupMs = Date.now() - startMs;
    startMs = Date.now();
    workload.start();
    note(`cluster and watchers ready after ${setupMs} ms; the workload starts`);
    note(`${options.clients} clients over ${keys.length} keys, ${watchers.length} watchers over ${keyPrefix}`);
    let faults = new Map<string, number>();
    try {
      faults = await runFaults(plan, injectors, target, startMs, note, () => false);
    } catch (error) {
      violations.push(`a fault could not be healed: ${(error as Error).message}`);
    }
    const leftMs = startMs + options.secs * 1_000 - Date.now();
    if (leftMs > 0) await sleep(leftMs);
    await workload.stop();
    note(`clients stopped after ${workload.ops.length} operations`);
    await makeWhole(target, note);
    const finalRevision = await settle(target, watchers, note);
    running = false;
    await healing;
    violations.push(...workload.problems);
    const checked = checkRun(workload.ops, watchers, finalRevision, note);
    violations.push(...checked.violations);
    const report: ChaosReport = {
      opsRecorded: workload.ops.length,
      opsChecked: workload.ops.filter((op) => op.output !== undefined || mayWrite(op.input)).length,
      unknownOutcomes: workload.ops.filter((op) => op.output === undefined).length,
      unknownReasons: workload.unknownReasons,
      notSent: workload.notSent,
      faults,
      watchEvents: watchers.reduce((sum, w) => sum + w.responses().reduce((n, r) => n + r.events.length, 0), 0),
      finalRevision,
      verdict: checked.verdict,
      checkerMs: checked.checkerMs,
      violations,
    };
    if (violations.length === 0 && checked.verdict?.result === 'ok') return report;
    const written = await writeEvidence(options, workload.ops, watchers, checked, violations, target);
    return { ...report, written };
  } finally {
    running = false;
    await healing;
    for (const watcher of watchers) watcher.close();
    await target.destroy();
  }
}

/** Resumes broken watch streams on members that answer /health, until the run says stop. */
async function healWatchers(
  watchers: readonly ResumingWatcher[],
  target: ChaosTarget,
  running: () => boolean,
  note: (line: string) => void,
): Promise<void> {
  while (running()) {
    await sleep(healIntervalMs);
    const broken = watchers.filter((w) => w.current.stream.ended);
    if (broken.length === 0) continue;
    const healthy: string[] = [];
    for (const endpoint of target.endpoints()) if ((await probeHealth(endpoint)) === '') healthy.push(endpoint);
    if (healthy.length === 0) continue;
    for (const watcher of broken) {
      try {
        const done = await watcher.heal(healthy);
        if (done !== '') note(done);
      } catch {
        // Tried again on the next round: the member it tried may have gone down meanwhile.
      }
    }
  }
}

/** Restarts members the plan left down and resumes paused ones, so the final reads see everyone. */
async function makeWhole(target: ChaosTarget, note: (line: string) => void): Promise<void> {
  for (const [index, name] of target.names.entries()) {
    if (target.running(index)) target.resume(index);
    else {
      note(`restarting ${name} for the final checks`);
      await target.restart(index);
    }
  }
}

/**
 * Reads the final revision through a member (a linearizable read) once writes in flight settle,
 * waits for every watcher to reach it, and reads again until it stops moving.
 */
async function settle(
  target: ChaosTarget,
  watchers: readonly ResumingWatcher[],
  note: (line: string) => void,
): Promise<number> {
  let last = 0;
  for (let round = 0; round < settleRoundsMax; round += 1) {
    await sleep(settlePauseMs);
    const now = await finalRevision(target);
    if (now === last) break;
    last = now;
    const deadline = Date.now() + settleWaitMs;
    while (watchers.some((w) => w.reached() < last) && Date.now() < deadline) await sleep(healIntervalMs);
  }
  const behind = watchers.filter((w) => w.reached() < last).map((w) => `${w.name} at ${w.reached()}`);
  note(
    `final revision ${last}${behind.length === 0 ? ', every watcher reached it' : `; behind: ${behind.join(', ')}`}`,
  );
  return last;
}

async function finalRevision(target: ChaosTarget): Promise<number> {
  const deadline = Date.now() + settleWaitMs;
  let lastError = 'not asked yet';
  while (Date.now() < deadline) {
    for (const endpoint of target.endpoints()) {
      const client = new EtcdGrpc(endpoint);
      try {
        const answer = await client.unary('etcdserverpb.KV/Range', {
          key: Buffer.from(watchedRange.key),
          rangeEnd: Buffer.from(watchedRange.rangeEnd),
          countOnly: true,
        });
        if (answer.code === grpc.status.OK) return Number((answer.response.header as { revision: string }).revision);
        lastError = `${endpoint}: ${answer.message}`;
      } finally {
        client.close();
      }
    }
    await sleep(healIntervalMs);
  }
  throw new Error(`could not read the final revision within ${settleWaitMs} ms: ${lastError}`);
}

interface Checked {
  readonly verdict: Verdict | undefined;
  readonly checkerMs: number;
  readonly violations: string[];
  readonly resolution: Resolution;
}

/**
 * The watch checks, then the linearizability check. When the watchers saw every revision, they
 * also tell which writes of unknown outcome happened (by their unique values) and at which revision.
 */
function checkRun(
  ops: readonly Operation[],
  watchers: readonly ResumingWatcher[],
  finalRevision: number,
  note: (line: string) => void,
): Checked {
  const violations: string[] = [];
  const resolution = resolveHistory(
    writeHistoryOf(ops),
    watchers.map((w) => w.view()),
    firstWriteRevision,
    finalRevision,
  );
  violations.push(...resolution.problems.map((p) => `watch history: ${p}`));
  for (const watcher of watchers) {
    const record = watcher.record();
    // Attempts to resume on a member that was down are expected here; the resumed stream is checked.
    const problems = record.problems.filter((p) => !p.startsWith(resumeFailedPrefix));
    violations.push(...checkWatchRecord({ ...record, problems }, resolution).map((p) => `${watcher.name}: ${p}`));
  }
  const fates = violations.length === 0 ? unknownFates(ops, resolution) : new Map<number, number | 'not applied'>();
  const started = performance.now();
  const verdict = checkHistory(ops, { initialRevision: 1, unknownFates: fates, msMax: checkerMsMax });
  const checkerMs = Math.round(performance.now() - started);
  note(
    `linearizability: ${verdict.result} in ${checkerMs} ms (${verdict.statesVisited} states${verdict.result === 'ok' ? `, ${verdict.partitions} partitions` : ''})`,
  );
  if (verdict.result === 'illegal') violations.push(verdict.explanation.text);
  return { verdict, checkerMs, violations, resolution };
}

/**
 * What the watchers (which saw every revision) tell of writes of unknown outcome: one that puts
 * made the revision its unique value appeared at, or none. A delete carries no unique value, so
 * unknown deletes of a key are told apart only when none of them made a revision: then each one
 * changed nothing (the key was missing, or its compare failed) and may as well not have happened.
 */
function unknownFates(ops: readonly Operation[], resolution: Resolution): Map<number, number | 'not applied'> {
  const fates = new Map<number, number | 'not applied'>();
  const deletedByUnknown = new Set<string>();
  for (const op of ops)
    if (op.output === undefined && !putsSomething(op) && resolution.unknownApplied.has(`#${op.id}`))
      for (const key of keysOf(op.input)) deletedByUnknown.add(key);
  for (const op of ops) {
    if (op.output !== undefined) continue;
    if (putsSomething(op)) fates.set(op.id, resolution.unknownApplied.get(`#${op.id}`) ?? 'not applied');
    else if (mayWrite(op.input) && !keysOf(op.input).some((key) => deletedByUnknown.has(key)))
      fates.set(op.id, 'not applied');
  }
  return fates;
}

/** Whether an operation's success branch puts a (unique) value, which watchers can recognise. */
function putsSomething(op: Operation): boolean {
  const input = op.input;
  return input.type === 'put' || (input.type === 'txn' && input.success.some((o) => o.type === 'put'));
}

/** Writes history.json, explanation.txt, watches.json and the members' log tails; returns the directory. */
async function writeEvidence(
  options: ChaosOptions,
  ops: readonly Operation[],
  watchers: readonly ResumingWatcher[],
  checked: Checked,
  violations: readonly string[],
  target: ChaosTarget,
): Promise<string> {
  const dir = join(options.outDir, `seed-${options.seed}`);
  await mkdir(dir, { recursive: true });
  const history = ops.map((op) => ({ ...op, returnMs: Number.isFinite(op.returnMs) ? op.returnMs : null }));
  await writeFile(join(dir, 'history.json'), `${JSON.stringify(history, null, 1)}\n`);
  const verdict = checked.verdict;
  const explanation = [
    `seed ${options.seed}, ${options.secs} s, ${options.mode}, ${options.clients} clients`,
    `linearizability: ${verdict === undefined ? 'not checked' : verdict.result === 'unknown' ? `unknown (${verdict.reason})` : verdict.result}`,
    ...violations,
  ];
  await writeFile(join(dir, 'explanation.txt'), `${explanation.join('\n')}\n`);
  const watches = watchers.map((w) => ({ name: w.name, ...w.record() }));
  await writeFile(join(dir, 'watches.json'), `${JSON.stringify(watches)}\n`);
  await writeFile(join(dir, 'member-logs.txt'), target.logTails());
  return dir;
}

/** The closing lines: what was checked, the faults, the verdict. */
export function summary(seed: number, secs: number, mode: string, report: ChaosReport): string[] {
  const faults = [...report.faults].map(([kind, count]) => `${kind} ${count}`).join(', ') || 'none';
  const verdict = report.verdict;
  return [
    `seed ${seed}, ${secs} s, ${mode}`,
    `operations checked: ${report.opsChecked} of ${report.opsRecorded} recorded (${report.unknownOutcomes} of unknown outcome), final revision ${report.finalRevision}`,
    `unknown outcomes by error: ${[...report.unknownReasons].map(([reason, n]) => `${reason} ${n}`).join('; ') || 'none'}; ${report.notSent} calls never sent (no connection)`,
    `watch events checked: ${report.watchEvents}`,
    `faults: ${faults}`,
    `linearizability: ${verdict === undefined ? 'not checked' : verdict.result === 'unknown' ? `inconclusive (${verdict.reason})` : verdict.result} in ${report.checkerMs} ms`,
    `violations: ${report.violations.length}`,
    ...report.violations.map((v) => `  ${v.split('\n').join('\n  ')}`),
    ...(report.written === undefined ? [] : [`history and explanation written to ${report.written}`]),
  ];
}
