/** Runs a differential script against one member and normalises what etcdctl printed. */
import { setTimeout as sleep } from 'node:timers/promises';
import { runEtcdctl, type CommandResult } from '../support/etcdctl.js';
import { BackgroundCommand } from './background.js';
import { splitWords, substitute, type Script, type ScriptStep } from './script.js';

/** What one step printed, after normalisation. */
export interface StepOutcome {
  readonly step: ScriptStep;
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number | null;
}

const leaseGrantedPattern = /lease ([0-9a-f]+) granted with TTL/;
const leaseKeptAlivePattern = /lease ([0-9a-f]+) keepalived with TTL/;
/** `lease timetolive`'s simple and JSON forms: the lease, its granted TTL and the time left. */
const timeToLiveTextPattern = /lease ([0-9a-f]+) granted with TTL\((\d+)s\), remaining\((-?\d+)s\)/g;
const timeToLiveJsonPattern = /"id":(\d+),"ttl":(-?\d+),"granted-ttl":(\d+)/g;
/** `lock` and `elect` print their session key, `<name>/<lease id in hex>`, on a line of its own. */
const sessionKeyPattern = /^[^\s/]+\/([0-9a-f]{1,16})$/gm;
/** Time a background command gets to connect and register (e.g. its watch) before the next step. */
export const backgroundSettleMsDefault = 500;
/** Upper bound of one `@sleep`. */
export const scriptSleepMsMax = 10_000;

/** A command the script started in the background, under its name. */
interface Background {
  readonly words: readonly string[];
  readonly command: BackgroundCommand;
  readonly startedAtMs: number;
}

/** What one run of a script keeps between steps. */
interface RunState {
  readonly endpoint: string;
  readonly variables: Map<string, string>;
  readonly leaseIdsHex: string[];
  /** By lease id (hex, no leading zeros): when the command that granted or last renewed it started. */
  readonly leaseRefreshedAtMs: Map<string, number>;
  readonly background: Map<string, Background>;
}

/**
 * The remaining TTLs etcd can report for a lease granted (or renewed) with `grantedSeconds` at most
 * `elapsedMs` before the report: etcd truncates the time left to whole seconds, so right after a
 * grant it already says granted - 1, and it never says less than what is left after `elapsedMs`.
 */
export function remainingTtlBounds(grantedSeconds: number, elapsedMs: number): { low: number; high: number } {
  return { low: Math.floor(grantedSeconds - elapsedMs / 1000), high: grantedSeconds - 1 };
}

/** Says whether a reported remaining TTL is one etcd could have printed for that lease at that point. */
export type RemainingTtlCheck = (leaseIdHex: string, grantedSeconds: number, remainingSeconds: number) => boolean;

/** Runs every step in order against `endpoint`; later steps may use leases granted by earlier ones. */
export async function runScript(endpoint: string, script: Script): Promise<StepOutcome[]> {
  const state: RunState = {
    endpoint,
    variables: new Map(),
    leaseIdsHex: [],
    leaseRefreshedAtMs: new Map(),
    background: new Map(),
  };
  const outcomes: StepOutcome[] = [];
  try {
    for (const step of script.steps) {
      const outcome = await runStep(state, step);
      if (outcome !== undefined) outcomes.push(outcome);
    }
  } finally {
    await Promise.all([...state.background.values()].map((b) => b.command.kill()));
  }
  return outcomes;
}

/** Runs one step; starting a background command and sleeping produce no outcome of their own. */
async function runStep(state: RunState, step: ScriptStep): Promise<StepOutcome | undefined> {
  const words = splitWords(substitute(step.text, state.variables));
  if (step.background !== undefined) {
    if (state.background.has(step.background))
      throw new Error(`line ${step.line}: &${step.background} is already running`);
    state.background.set(step.background, {
      words,
      command: new BackgroundCommand(state.endpoint, words),
      startedAtMs: Date.now(),
    });
    await sleep(backgroundSettleMsDefault);
    return undefined;
  }
  if (words[0] === '@sleep') {
    const ms = Number(words[1]);
    if (!Number.isInteger(ms) || ms < 0 || ms > scriptSleepMsMax)
      throw new Error(`line ${step.line}: @sleep takes 0..${scriptSleepMsMax} ms`);
    await sleep(ms);
    return undefined;
  }
  if (words[0] === '@stop') return stopBackground(state, step, words);
  if (words[0] === '@wait') {
    await backgroundNamed(state, step, words[1] ?? '').command.waitForLines(Number(words[2] ?? '1'));
    return undefined;
  }
  // Lock and elect print their session key as soon as they hold it; learning those lease ids now
  // keeps their labels in start order even when a later `get` shows the key first.
  for (const running of state.background.values())
    captureLeaseIds(state, running.words, running.command.output(), running.startedAtMs);
  const stdin = step.stdin === undefined ? undefined : substitute(step.stdin, state.variables);
  const startedAtMs = Date.now();
  const result = await runEtcdctl(state.endpoint, words, stdin === undefined ? {} : { stdin });
  return outcomeOf(state, step, words, result, startedAtMs);
}

function backgroundNamed(state: RunState, step: ScriptStep, name: string): Background {
  const running = state.background.get(name);
  if (running === undefined) throw new Error(`line ${step.line}: no background command named ${name}`);
  return running;
}

/** `@stop name [lines]`: the background command's whole output becomes this step's outcome. */
async function stopBackground(state: RunState, step: ScriptStep, words: readonly string[]): Promise<StepOutcome> {
  const name = words[1] ?? '';
  const running = backgroundNamed(state, step, name);
  state.background.delete(name);
  const result = await running.command.stop(Number(words[2] ?? '0'));
  return outcomeOf(state, step, running.words, result, running.startedAtMs);
}

function outcomeOf(
  state: RunState,
  step: ScriptStep,
  words: readonly string[],
  result: CommandResult,
  startedAtMs: number,
): StepOutcome {
  captureLeaseIds(state, words, result.stdout, startedAtMs);
  const finishedAtMs = Date.now();
  const plausible: RemainingTtlCheck = (leaseIdHex, grantedSeconds, remainingSeconds) => {
    const refreshedAtMs = state.leaseRefreshedAtMs.get(bareHex(leaseIdHex));
    if (refreshedAtMs === undefined) return false;
    const { low, high } = remainingTtlBounds(grantedSeconds, finishedAtMs - refreshedAtMs);
    return remainingSeconds >= low && remainingSeconds <= high;
  };
  return {
    step,
    stdout: normalise(result.stdout, state.leaseIdsHex, plausible),
    stderr: normalise(result.stderr, state.leaseIdsHex, plausible),
    code: result.code,
  };
}

/** A lease id in hex without leading zeros, the form ids are kept under. */
function bareHex(hex: string): string {
  return hex.replace(/^0+/, '');
}

/**
 * Lease ids a command revealed become $LEASE1, $LEASE2, ... and are hidden by `normalise`; a
 * granted or renewed lease's time left is counted from `startedAtMs`, when its command started.
 */
function captureLeaseIds(state: RunState, words: readonly string[], stdout: string, startedAtMs: number): void {
  const found: string[] = [];
  const granted = leaseGrantedPattern.exec(stdout);
  if (granted?.[1] !== undefined) found.push(granted[1]);
  if (words[0] === 'lock' || words[0] === 'elect') {
    for (const match of stdout.matchAll(sessionKeyPattern)) if (match[1] !== undefined) found.push(match[1]);
  }
  for (const hex of found) {
    if (state.leaseIdsHex.some((known) => bareHex(known) === bareHex(hex))) continue;
    state.leaseIdsHex.push(hex);
    state.variables.set(`LEASE${state.leaseIdsHex.length}`, hex);
    state.leaseRefreshedAtMs.set(bareHex(hex), startedAtMs);
  }
  const renewed = leaseKeptAlivePattern.exec(stdout)?.[1];
  if (renewed !== undefined) state.leaseRefreshedAtMs.set(bareHex(renewed), startedAtMs);
}

/**
 * Hides what legitimately differs between two members: cluster and member ids, raft terms,
 * lease ids (hex and decimal), log timestamps and endpoints. Revisions are kept: they must match.
 * A lease's remaining TTL depends on when the command ran: it becomes `<remaining>` only when
 * `remainingTtl` finds it within what etcd could have said then (remainingTtlBounds), and stays a
 * number otherwise, so a wrong TTL differs from etcd's `<remaining>`.
 */
export function normalise(text: string, leaseIdsHex: readonly string[], remainingTtl?: RemainingTtlCheck): string {
  const shown = (leaseIdHex: string, granted: string, remaining: string): string =>
    remainingTtl?.(leaseIdHex, Number(granted), Number(remaining)) === true ? '<remaining>' : remaining;
  let result = text
    .replace(
      timeToLiveTextPattern,
      (_match, id: string, granted: string, remaining: string) =>
        `lease ${id} granted with TTL(${granted}s), remaining(${shown(id, granted, remaining)}s)`,
    )
    .replace(
      timeToLiveJsonPattern,
      (_match, id: string, remaining: string, granted: string) =>
        `"id":${id},"ttl":${shown(BigInt(id).toString(16), granted, remaining)},"granted-ttl":${granted}`,
    )
    .replace(/"(cluster_id|member_id|raft_term)":\d+/g, '"$1":<$1>')
    .replace(/"(ClusterID|MemberID|RaftTerm)" : \d+/g, '"$1" : <$1>')
    .replace(/"ts":"[^"]*"/g, '"ts":<ts>')
    // etcdctl's retry warning names a random client id and the member's port.
    .replace(/"target":"[^"]*"/g, '"target":<target>')
    // etcd lists a lease's keys from a Go map, in random order: compare them as a set.
    .replace(
      /attached keys\(\[([^\]]*)\]\)/g,
      (_match, keys: string) => `attached keys([${keys.split(' ').sort().join(' ')}])`,
    )
    .replace(/"keys":\[([^\]]*)\]/g, (_match, keys: string) => `"keys":[${keys.split(',').sort().join(',')}]`);
  leaseIdsHex.forEach((hex, index) => {
    const label = `<lease${index + 1}>`;
    const decimal = BigInt(`0x${hex}`).toString(10);
    const bareHex = hex.replace(/^0+/, '');
    result = result
      .replace(new RegExp(`\\b0*${bareHex}\\b`, 'gi'), label)
      .replace(new RegExp(`\\b${decimal}\\b`, 'g'), label);
  });
  return result;
}

/** The printable form of a step's outcome, the unit that is compared and diffed. */
export function describeOutcome(outcome: StepOutcome): string {
  return [
    `exit code: ${String(outcome.code)}`,
    '--- stdout',
    outcome.stdout.trimEnd(),
    '--- stderr',
    outcome.stderr.trimEnd(),
  ].join('\n');
}

/** A line diff (longest common subsequence): ' ' same, '-' only expected, '+' only actual. */
export function lineDiff(expected: string, actual: string): string {
  const a = expected.split('\n');
  const b = actual.split('\n');
  const common: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i -= 1) {
    for (let j = b.length - 1; j >= 0; j -= 1) {
      const row = common[i] as number[];
      row[j] = a[i] === b[j] ? (common[i + 1]?.[j + 1] ?? 0) + 1 : Math.max(common[i + 1]?.[j] ?? 0, row[j + 1] ?? 0);
    }
  }
  const lines: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      lines.push(`  ${a[i]}`);
      i += 1;
      j += 1;
    } else if (i < a.length && (j >= b.length || (common[i + 1]?.[j] ?? 0) >= (common[i]?.[j + 1] ?? 0))) {
      lines.push(`- ${a[i]}`);
      i += 1;
    } else {
      lines.push(`+ ${b[j]}`);
      j += 1;
    }
  }
  return lines.join('\n');
}
