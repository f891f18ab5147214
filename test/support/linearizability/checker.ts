/**
 * A linearizability checker for etcd's KV model, after Wing & Gong with Lowe's memoisation (as in
 * Porcupine and Knossos): depth-first search over the history's call and return events, trying
 * to linearize each pending call in turn, with a memo of (set of linearized operations, model
 * state) pairs already explored so no configuration is searched twice.
 *
 * When every operation touches one key, the history is checked key by key (P-compositionality)
 * with revisions compared by order only, and a separate sweep checks revisions across keys: no
 * operation answers a revision below one that completed before it began, and no two writes share
 * one. A history with a txn over several keys is checked whole, with exact revisions.
 *
 * An operation whose outcome is unknown (timed out, connection lost) has no return: it may take
 * effect at any point after its call, or never. The search has a budget, so a pathological
 * history comes back 'unknown' instead of hanging, and a failure names the longest prefix that
 * could be linearized and the operations that could not be placed after it, with the model's reasons.
 */
import {
  describeInput,
  describeState,
  initialState,
  keysOf,
  mayWrite,
  step,
  type KvInput,
  type KvOutput,
  type KvState,
  type RevisionMode,
} from './kv-model.js';

/** One client operation: when it was called and returned (milliseconds on one clock) and what it answered. */
export interface Operation {
  readonly id: number;
  readonly client: number;
  readonly input: KvInput;
  /** undefined when the outcome is unknown; then `returnMs` is Infinity. */
  readonly output: KvOutput | undefined;
  readonly callMs: number;
  readonly returnMs: number;
  /** Why the outcome is unknown (the client's error), for reports. */
  readonly error?: string;
}

/** Configurations the search may visit over all partitions before it answers 'unknown'. */
export const searchStatesMaxDefault = 2_000_000;
/** Wall time the search may take before it answers 'unknown'. */
export const searchMsMaxDefault = 30_000;
/** Operations of the linearized prefix an explanation prints (its end, where it got stuck). */
const explanationPrefixShownMax = 12;

export interface CheckOptions {
  /** The store revision before the first operation; 1 for a new cluster. */
  readonly initialRevision?: number;
  /** 'auto' splits by key when every operation touches one key; 'never' checks the whole history at once. */
  readonly partition?: 'auto' | 'never';
  readonly statesMax?: number;
  readonly msMax?: number;
  /**
   * What is known otherwise (from watchers that saw every revision) about operations of unknown
   * outcome, by id: the revision one made, or 'not applied'.
   */
  readonly unknownFates?: ReadonlyMap<number, number | 'not applied'>;
}

/** Why a history is not linearizable: where the search got furthest and what it could not place there. */
export interface Explanation {
  /** The key of the partition that failed, or 'all keys'. */
  readonly partition: string;
  /** The longest sequence of operations (ids) that could be linearized, in order. */
  readonly longestPrefix: readonly number[];
  /** The model's state after that prefix. */
  readonly stateAfterPrefix: string;
  /** Operations that could come next, each with the model's reason for refusing it. */
  readonly unplaceable: ReadonlyArray<{ readonly id: number; readonly op: string; readonly reason: string }>;
  /** The explanation as lines for a report. */
  readonly text: string;
}

export type Verdict =
  | { readonly result: 'ok'; readonly partitions: number; readonly statesVisited: number }
  | { readonly result: 'illegal'; readonly statesVisited: number; readonly explanation: Explanation }
  | { readonly result: 'unknown'; readonly statesVisited: number; readonly reason: string };

/** Checks a whole history. */
export function checkHistory(history: readonly Operation[], options: CheckOptions = {}): Verdict {
  const ops = narrowUnknowns(
    history.filter((op) => op.output !== undefined || mayWrite(op.input)),
    options.unknownFates ?? new Map(),
  );
  const order = revisionOrderProblems(ops);
  if (order !== undefined) return { result: 'illegal', statesVisited: 0, explanation: order };
  const singleKey = ops.every((op) => keysOf(op.input).length === 1);
  const split = options.partition !== 'never' && singleKey;
  const partitions = split ? partitionByKey(ops) : new Map([['all keys', ops]]);
  const mode: RevisionMode = split ? 'relative' : 'exact';
  const budget = new Budget(options.statesMax ?? searchStatesMaxDefault, options.msMax ?? searchMsMaxDefault);
  for (const [name, part] of partitions) {
    const found = searchPartition(part, initialState(options.initialRevision ?? 1), mode, budget);
    if (found === 'budget')
      return {
        result: 'unknown',
        statesVisited: budget.states,
        reason: `search budget spent (${budget.states} states, ${budget.elapsedMs()} ms) in partition ${name}`,
      };
    if (found !== 'ok')
      return {
        result: 'illegal',
        statesVisited: budget.states,
        explanation: explain(name, part, found, initialState(options.initialRevision ?? 1), mode),
      };
  }
  return { result: 'ok', partitions: partitions.size, statesVisited: budget.states };
}

/**
 * Shortens the open end of writes of unknown outcome where the history itself bounds it, and
 * drops those known not to have happened. A write whose unique value some answered read returned
 * took effect before that read returned; one that made revision r took effect before any answered
 * operation naming a revision of r or more returned. Both only narrow the search.
 */
function narrowUnknowns(ops: readonly Operation[], fates: ReadonlyMap<number, number | 'not applied'>): Operation[] {
  const writers = new Map<string, number>();
  for (const op of ops) for (const put of putsOf(op)) writers.set(put, (writers.get(put) ?? 0) + 1);
  const readAt = new Map<string, number>();
  for (const op of ops)
    for (const read of readsOf(op)) readAt.set(read, Math.min(readAt.get(read) ?? Infinity, op.returnMs));
  const answered = ops.filter((op) => op.output !== undefined).sort((a, b) => revisionOf(b) - revisionOf(a));
  const returnFrom = new Map<number, number>();
  let earliest = Infinity;
  for (const op of answered) returnFrom.set(revisionOf(op), (earliest = Math.min(earliest, op.returnMs)));
  const atOrAbove = (revision: number) => {
    let bound = Infinity;
    for (const [r, returnMs] of returnFrom) if (r >= revision) bound = Math.min(bound, returnMs);
    return bound;
  };
  const narrowed: Operation[] = [];
  for (const op of ops) {
    if (op.output !== undefined) {
      narrowed.push(op);
      continue;
    }
    const fate = fates.get(op.id);
    if (fate === 'not applied') continue;
    let returnMs = fate === undefined ? Infinity : atOrAbove(fate);
    for (const put of putsOf(op))
      if (writers.get(put) === 1) returnMs = Math.min(returnMs, readAt.get(put) ?? Infinity);
    const output = fate === undefined ? undefined : outputAt(op.input, fate);
    narrowed.push({ ...op, output, returnMs: returnMs === Infinity ? Infinity : Math.max(op.callMs, returnMs) });
  }
  return narrowed;
}

/**
 * The response a write known to have made `revision` would have had, when that is all there is
 * to it: a put, or a txn whose success branch only puts. Otherwise undefined (still unknown).
 */
function outputAt(input: KvInput, revision: number): KvOutput | undefined {
  if (input.type === 'put') return { type: 'put', revision };
  if (input.type !== 'txn' || !input.success.every((op) => op.type === 'put')) return undefined;
  return { type: 'txn', revision, succeeded: true, results: input.success.map(() => ({ type: 'put' }) as const) };
}

/** `key=value` of every put an operation may make (both branches of a txn). */
function putsOf(op: Operation): string[] {
  const input = op.input;
  const ops = input.type === 'txn' ? [...input.success, ...input.failure] : [input];
  return ops.flatMap((o) => (o.type === 'put' ? [`${o.key}=${o.value}`] : []));
}

/** `key=value` of every key an answered operation read. */
function readsOf(op: Operation): string[] {
  const output = op.output;
  if (output === undefined) return [];
  const input = op.input;
  if (output.type === 'get')
    return output.kv === null ? [] : [`${input.type === 'get' ? input.key : ''}=${output.kv.value}`];
  if (output.type !== 'txn' || input.type !== 'txn') return [];
  const branch = output.succeeded ? input.success : input.failure;
  return output.results.flatMap((result, i) => {
    const request = branch[i];
    return result.type === 'get' && result.kv !== null && request !== undefined
      ? [`${request.key}=${result.kv.value}`]
      : [];
  });
}

function partitionByKey(ops: readonly Operation[]): Map<string, Operation[]> {
  const parts = new Map<string, Operation[]>();
  for (const op of ops) {
    const [key] = keysOf(op.input) as [string];
    let part = parts.get(key);
    if (part === undefined) parts.set(key, (part = []));
    part.push(op);
  }
  return parts;
}

class Budget {
  states = 0;
  private readonly startMs = Date.now();

  constructor(
    private readonly statesMax: number,
    private readonly msMax: number,
  ) {}

  /** Counts one state; false once the budget is spent (time is looked at every few thousand states). */
  spend(): boolean {
    this.states += 1;
    if (this.states > this.statesMax) return false;
    return (this.states & 0xfff) !== 0 || this.elapsedMs() <= this.msMax;
  }

  elapsedMs(): number {
    return Date.now() - this.startMs;
  }
}

/** A node of the doubly linked list of call and return events. */
interface Entry {
  readonly index: number;
  readonly isCall: boolean;
  readonly timeMs: number;
  /** For a call, its return entry; for a return, its call entry. */
  match: Entry | undefined;
  prev: Entry | undefined;
  next: Entry | undefined;
}

/**
 * The search over one partition: 'ok', 'budget', or the longest linearized prefix (indexes into
 * `ops`) when no linearization exists.
 */
function searchPartition(
  ops: readonly Operation[],
  start: KvState,
  mode: RevisionMode,
  budget: Budget,
): 'ok' | 'budget' | number[] {
  const head = buildEntries(ops);
  const linearized = new Bitset(ops.length);
  const pending = new PendingRevisions(ops, linearized);
  const memo = new Set<string>();
  const calls: Array<{ entry: Entry; state: KvState }> = [];
  let longest: number[] = [];
  let state = start;
  let entry = head.next;
  while (head.next !== undefined) {
    if (!budget.spend()) return 'budget';
    if (entry === undefined) throw new Error('the search ran past the last event with calls still pending');
    if (entry.isCall) {
      const op = ops[entry.index] as Operation;
      const next = step(state, op.input, op.output, mode);
      // An operation of unknown outcome that changes nothing here (a CAS whose compare fails, a
      // delete of a missing key) may as well never happen, which is placing it after everything
      // answered; trying it here too would double the configurations for each one.
      const noEffect = op.output === undefined && next.ok && next.state.hash === state.hash;
      if (next.ok && !(noEffect && pending.lowest() !== Infinity)) {
        pending.linearize(entry.index);
        // The model's revision never goes down, so no answered operation left may name a lower
        // one; this cuts short chains of unknown writes that ran ahead of the answered ones.
        if (next.state.revision <= pending.lowest() && remember(memo, linearized, next.state)) {
          calls.push({ entry, state });
          state = next.state;
          lift(entry);
          if (calls.length > longest.length) longest = calls.map((c) => c.entry.index);
          entry = head.next;
          continue;
        }
        pending.unlinearize(entry.index);
      }
      entry = entry.next;
    } else {
      // A return whose call is not linearized yet: undo the last choice and try the next one.
      const last = calls.pop();
      if (last === undefined) return longest;
      state = last.state;
      pending.unlinearize(last.entry.index);
      unlift(last.entry);
      entry = last.entry.next;
    }
  }
  return 'ok';
}

/** The linearized set, and the lowest revision an answered operation not linearized yet names. */
class PendingRevisions {
  /** Answered operations' indexes by revision. */
  private readonly byRevision: number[];
  /** Each operation's place in byRevision; -1 for an unknown outcome. */
  private readonly place: Int32Array;
  /** The first place in byRevision not linearized yet. */
  private low = 0;

  constructor(
    private readonly ops: readonly Operation[],
    private readonly linearized: Bitset,
  ) {
    this.byRevision = ops
      .map((op, index) => ({ op, index }))
      .filter(({ op }) => op.output !== undefined)
      .sort((a, b) => revisionOf(a.op) - revisionOf(b.op))
      .map(({ index }) => index);
    this.place = new Int32Array(ops.length).fill(-1);
    for (const [place, index] of this.byRevision.entries()) this.place[index] = place;
  }

  linearize(index: number): void {
    this.linearized.set(index);
    while (this.low < this.byRevision.length && this.linearized.has(this.byRevision[this.low] as number)) this.low += 1;
  }

  unlinearize(index: number): void {
    this.linearized.clear(index);
    const place = this.place[index] as number;
    if (place >= 0 && place < this.low) this.low = place;
  }

  lowest(): number {
    const index = this.byRevision[this.low];
    return index === undefined ? Infinity : revisionOf(this.ops[index] as Operation);
  }
}

/** Calls and returns sorted by time; a call at the same time as a return comes first (they overlap). */
function buildEntries(ops: readonly Operation[]): Entry {
  const entries: Entry[] = [];
  for (const [index, op] of ops.entries()) {
    if (!(op.returnMs >= op.callMs))
      throw new Error(`operation ${op.id} returns at ${op.returnMs}, before its call at ${op.callMs}`);
    const call: Entry = { index, isCall: true, timeMs: op.callMs, match: undefined, prev: undefined, next: undefined };
    const ret: Entry = { index, isCall: false, timeMs: op.returnMs, match: call, prev: undefined, next: undefined };
    call.match = ret;
    entries.push(call, ret);
  }
  entries.sort((a, b) => a.timeMs - b.timeMs || Number(b.isCall) - Number(a.isCall) || a.index - b.index);
  const head: Entry = {
    index: -1,
    isCall: false,
    timeMs: -Infinity,
    match: undefined,
    prev: undefined,
    next: undefined,
  };
  let previous = head;
  for (const entry of entries) {
    previous.next = entry;
    entry.prev = previous;
    previous = entry;
  }
  return head;
}

/** Takes a call and its return out of the list. */
function lift(call: Entry): void {
  unlink(call);
  unlink(call.match as Entry);
}

/** Puts them back where they were (in the reverse order of taking out). */
function unlift(call: Entry): void {
  relink(call.match as Entry);
  relink(call);
}

function unlink(entry: Entry): void {
  (entry.prev as Entry).next = entry.next;
  if (entry.next !== undefined) entry.next.prev = entry.prev;
}

function relink(entry: Entry): void {
  (entry.prev as Entry).next = entry;
  if (entry.next !== undefined) entry.next.prev = entry;
}

/**
 * Adds (linearized, state) to the memo; false when it was there already. The linearized set is
 * kept as two independent 32-bit hashes rather than a copy (a copy per state costs hundreds of
 * megabytes on long histories); a collision of both, odds about states^2 / 2^64, could only prune
 * a branch, never accept a history.
 */
function remember(memo: Set<string>, linearized: Bitset, state: KvState): boolean {
  const key = `${linearized.hash}:${linearized.hash2}:${state.hash}`;
  if (memo.has(key)) return false;
  memo.add(key);
  return true;
}

/** A set of operation indexes with incrementally kept hashes (Zobrist: XOR of a random word per member). */
class Bitset {
  private readonly words: Uint32Array;
  hash = 0;
  hash2 = 0;

  constructor(size: number) {
    this.words = new Uint32Array(Math.ceil(size / 32) + 1);
  }

  set(index: number): void {
    this.words[index >>> 5]! |= 1 << (index & 31);
    this.toggle(index);
  }

  clear(index: number): void {
    this.words[index >>> 5]! &= ~(1 << (index & 31));
    this.toggle(index);
  }

  has(index: number): boolean {
    return ((this.words[index >>> 5] as number) & (1 << (index & 31))) !== 0;
  }

  private toggle(index: number): void {
    this.hash ^= mix32(index + 0x6d2b79f5);
    this.hash2 ^= mix32(Math.imul(index + 1, 0x9e3779b1) ^ 0x5bd1e995);
  }
}

/** A well-mixed 32-bit word for a number (the mulberry32 finaliser), so XORs of them rarely collide. */
function mix32(seed: number): number {
  let mixed = Math.imul(seed ^ (seed >>> 15), seed | 1);
  mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
  return (mixed ^ (mixed >>> 14)) >>> 0;
}

/** Replays the longest prefix and asks the model about every operation that could come next. */
function explain(
  partition: string,
  ops: readonly Operation[],
  prefix: readonly number[],
  start: KvState,
  mode: RevisionMode,
): Explanation {
  let state = start;
  for (const index of prefix) {
    const op = ops[index] as Operation;
    const next = step(state, op.input, op.output, mode);
    if (!next.ok) throw new Error(`replaying the linearized prefix failed at operation ${op.id}: ${next.reason}`);
    state = next.state;
  }
  const placed = new Set(prefix);
  const rest = ops.map((op, index) => ({ op, index })).filter(({ index }) => !placed.has(index));
  // The next operation must be called before the earliest remaining return.
  const deadlineMs = Math.min(...rest.map(({ op }) => op.returnMs));
  const unplaceable = rest
    .filter(({ op }) => op.callMs <= deadlineMs)
    .map(({ op }) => {
      const next = step(state, op.input, op.output, mode);
      return {
        id: op.id,
        op: describeOperation(op),
        reason: next.ok ? 'fits here, but nothing fits after it' : next.reason,
      };
    });
  const shown = prefix.slice(-explanationPrefixShownMax).map((index) => describeOperation(ops[index] as Operation));
  const text = [
    `not linearizable (${partition}): ${prefix.length} operations linearize, the next cannot be placed`,
    `last of the linearized prefix${prefix.length > shown.length ? ` (${prefix.length - shown.length} before these)` : ''}:`,
    ...shown.map((line) => `  ${line}`),
    `model after it: ${describeState(state)}`,
    'could come next, and why not:',
    ...unplaceable.map((u) => `  ${u.op}: ${u.reason}`),
  ].join('\n');
  return {
    partition,
    longestPrefix: prefix.map((i) => (ops[i] as Operation).id),
    stateAfterPrefix: describeState(state),
    unplaceable,
    text,
  };
}

/** `#12 c3 [100..140 ms] put a=v1 -> revision 7`, for explanations. */
export function describeOperation(op: Operation): string {
  const span = `[${op.callMs.toFixed(0)}..${Number.isFinite(op.returnMs) ? op.returnMs.toFixed(0) : 'never'} ms]`;
  return `#${op.id} c${op.client} ${span} ${describeInput(op.input)} -> ${describeOutput(op)}`;
}

function describeOutput(op: Operation): string {
  const output = op.output;
  if (output === undefined) return `unknown${op.error === undefined ? '' : ` (${op.error})`}`;
  switch (output.type) {
    case 'get':
      return output.kv === null
        ? `nothing at revision ${output.revision}`
        : `"${output.kv.value}" (version ${output.kv.version}, mod ${output.kv.modRevision}) at revision ${output.revision}`;
    case 'put':
      return `revision ${output.revision}`;
    case 'delete':
      return `deleted ${output.deleted} at revision ${output.revision}`;
    case 'txn':
      return `${output.succeeded ? 'succeeded' : 'failed'} at revision ${output.revision}${output.results
        .map((r) =>
          r.type === 'get'
            ? `, got ${r.kv === null ? 'nothing' : `"${r.kv.value}"`}`
            : r.type === 'delete'
              ? `, deleted ${r.deleted}`
              : '',
        )
        .join('')}`;
    default:
      return output satisfies never;
  }
}

/**
 * Revisions across the whole history, in real-time order: an operation called after another
 * returned answers a revision at least as high (higher if it wrote), and no two writes that
 * answered share a revision.
 */
function revisionOrderProblems(ops: readonly Operation[]): Explanation | undefined {
  const done = ops.filter((op) => op.output !== undefined);
  const byReturn = [...done].sort((a, b) => a.returnMs - b.returnMs);
  const byCall = [...done].sort((a, b) => a.callMs - b.callMs);
  const writers = new Map<number, Operation>();
  let highest: Operation | undefined;
  let returned = 0;
  for (const op of byCall) {
    while (returned < byReturn.length && (byReturn[returned] as Operation).returnMs < op.callMs) {
      const candidate = byReturn[returned] as Operation;
      if (highest === undefined || revisionOf(candidate) > revisionOf(highest)) highest = candidate;
      returned += 1;
    }
    const wrote = answeredWrite(op);
    if (
      highest !== undefined &&
      (revisionOf(op) < revisionOf(highest) || (wrote && revisionOf(op) === revisionOf(highest)))
    )
      return orderExplanation(op, `revision went back: it was called after ${describeOperation(highest)} returned`);
    if (!wrote) continue;
    const other = writers.get(revisionOf(op));
    if (other !== undefined)
      return orderExplanation(op, `it and ${describeOperation(other)} both wrote revision ${revisionOf(op)}`);
    writers.set(revisionOf(op), op);
  }
  return undefined;
}

function orderExplanation(op: Operation, reason: string): Explanation {
  const text = `not linearizable (revision order): ${describeOperation(op)}: ${reason}`;
  return {
    partition: 'revision order',
    longestPrefix: [],
    stateAfterPrefix: '',
    unplaceable: [{ id: op.id, op: describeOperation(op), reason }],
    text,
  };
}

function revisionOf(op: Operation): number {
  return (op.output as KvOutput).revision;
}

/** Whether an answered operation made a revision: a put, a delete that deleted, a txn branch that did either. */
function answeredWrite(op: Operation): boolean {
  const output = op.output as KvOutput;
  switch (output.type) {
    case 'get':
      return false;
    case 'put':
      return true;
    case 'delete':
      return output.deleted > 0;
    case 'txn':
      return output.results.some((r) => r.type === 'put' || (r.type === 'delete' && r.deleted > 0));
    default:
      return output satisfies never;
  }
}
