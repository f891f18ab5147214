/**
 * etcd's KV model for the linearizability checker: keys with value, version, create and mod
 * revision, and the store revision. Every operation (get, put, delete, txn with compares) is a
 * transaction here, applied in order the way etcd's apply does; its response must match the
 * model exactly, header revision included.
 *
 * Two revision modes. `exact`: the history holds every write the store saw, so the store
 * revision is known at each point and a write must answer exactly the next one. `relative`: the
 * history is one key's share of a larger one (P-compositionality), so only order is known: a
 * write's revision is above every revision seen before it, a read's header is not below them,
 * and a write of unknown outcome that happened leaves its mod revision known only by a lower bound.
 */

/** What a compare looks at, as etcd's Compare.target. */
export type CompareTarget = 'value' | 'version' | 'create' | 'mod';
/** How it compares, as etcd's Compare.result. */
export type CompareResult = 'equal' | 'not-equal' | 'less' | 'greater';

/** One compare of a txn on one key. */
export interface Compare {
  readonly key: string;
  readonly target: CompareTarget;
  readonly result: CompareResult;
  /** A string for 'value', a number for the others. */
  readonly operand: string | number;
}

/** One operation inside a txn branch (or the whole of a plain get, put or delete). */
export type TxnRequestOp =
  | { readonly type: 'get'; readonly key: string }
  | { readonly type: 'put'; readonly key: string; readonly value: string }
  | { readonly type: 'delete'; readonly key: string };

/** What a client asked. */
export type KvInput =
  | TxnRequestOp
  | {
      readonly type: 'txn';
      readonly compares: readonly Compare[];
      readonly success: readonly TxnRequestOp[];
      readonly failure: readonly TxnRequestOp[];
    };

/** A key as a read returned it. */
export interface KeyValueSeen {
  readonly value: string;
  readonly version: number;
  readonly createRevision: number;
  readonly modRevision: number;
}

/** One op's result inside a txn response. */
export type TxnOpResult =
  | { readonly type: 'get'; readonly kv: KeyValueSeen | null }
  | { readonly type: 'put' }
  | { readonly type: 'delete'; readonly deleted: number };

/** What the store answered; `revision` is the response header's. */
export type KvOutput =
  | { readonly type: 'get'; readonly revision: number; readonly kv: KeyValueSeen | null }
  | { readonly type: 'put'; readonly revision: number }
  | { readonly type: 'delete'; readonly revision: number; readonly deleted: number }
  | {
      readonly type: 'txn';
      readonly revision: number;
      readonly succeeded: boolean;
      readonly results: readonly TxnOpResult[];
    };

/**
 * One key in the model. In relative mode a revision not known yet is stored as -(lower bound):
 * the real one is at least that.
 */
interface KeyState {
  readonly value: string;
  readonly version: number;
  readonly create: number;
  readonly mod: number;
}

/** The model's state; `hash` identifies it for the checker's memo. */
export interface KvState {
  /** The store revision (exact mode) or a lower bound on it (relative mode). */
  readonly revision: number;
  readonly keys: ReadonlyMap<string, KeyState>;
  readonly hash: string;
}

export type RevisionMode = 'exact' | 'relative';

/** The outcome of one step: the next state, or why the response cannot follow this state. */
export type StepResult =
  { readonly ok: true; readonly state: KvState } | { readonly ok: false; readonly reason: string };

/** An empty store at `revision` (1 for a new cluster). */
export function initialState(revision = 1): KvState {
  return makeState(revision, new Map());
}

/** Keys an input touches (its compares and both branches). */
export function keysOf(input: KvInput): string[] {
  if (input.type !== 'txn') return [input.key];
  const keys = new Set<string>();
  for (const compare of input.compares) keys.add(compare.key);
  for (const op of [...input.success, ...input.failure]) keys.add(op.key);
  return [...keys];
}

/** Whether an input can change the store; a read-only op of unknown outcome constrains nothing. */
export function mayWrite(input: KvInput): boolean {
  if (input.type === 'txn') return [...input.success, ...input.failure].some((op) => op.type !== 'get');
  return input.type !== 'get';
}

/** Applies `input` to `state`; with `output` undefined (outcome unknown) any result is accepted. */
export function step(state: KvState, input: KvInput, output: KvOutput | undefined, mode: RevisionMode): StepResult {
  const txn = asTxn(input);
  const seen = output === undefined ? undefined : asTxnOutput(output);
  const keys = new Map(state.keys);
  let succeeded = txn.compares.every((c) => compareHolds(keys.get(c.key), c));
  if (txn.compares.some((c) => compareUnknown(keys.get(c.key), c))) succeeded = seen?.succeeded ?? succeeded;
  if (seen !== undefined && seen.succeeded !== succeeded)
    return fail(`compares ${succeeded ? 'hold' : 'fail'} in the model, the response says succeeded=${seen.succeeded}`);
  const ops = succeeded ? txn.success : txn.failure;
  if (seen !== undefined && seen.results.length !== ops.length)
    return fail(`expected ${ops.length} op results, saw ${seen.results.length}`);
  const writeRevision = nextWriteRevision(state, seen, mode);
  let wrote = false;
  for (const [index, op] of ops.entries()) {
    const result = seen?.results[index];
    const before = keys.get(op.key);
    switch (op.type) {
      case 'get': {
        if (result === undefined) break;
        if (result.type !== 'get') return fail(`op ${index} is a get, the response has a ${result.type}`);
        const checked = checkRead(op.key, before, result.kv, seen?.revision ?? 0, mode);
        if (typeof checked === 'string') return fail(checked);
        if (checked !== undefined) keys.set(op.key, checked);
        break;
      }
      case 'put':
        if (result !== undefined && result.type !== 'put')
          return fail(`op ${index} is a put, the response has a ${result.type}`);
        keys.set(op.key, {
          value: op.value,
          version: (before?.version ?? 0) + 1,
          create: before?.create ?? writeRevision,
          mod: writeRevision,
        });
        wrote = true;
        break;
      case 'delete': {
        const deleted = before === undefined ? 0 : 1;
        if (result !== undefined && (result.type !== 'delete' || result.deleted !== deleted))
          return fail(`delete of ${op.key}: the model deletes ${deleted}, the response says ${describeResult(result)}`);
        keys.delete(op.key);
        wrote ||= deleted === 1;
        break;
      }
      default:
        return op satisfies never;
    }
  }
  return finishRevision(state, keys, seen?.revision, wrote, writeRevision, mode);
}

/** The revision this op's writes get: exact, the one the response names, or -(lower bound) if unknown. */
function nextWriteRevision(state: KvState, seen: TxnOutput | undefined, mode: RevisionMode): number {
  if (mode === 'exact') return state.revision + 1;
  return seen === undefined ? -(state.revision + 1) : seen.revision;
}

/** Checks the response header revision against the model and moves the store revision on. */
function finishRevision(
  state: KvState,
  keys: Map<string, KeyState>,
  headerRevision: number | undefined,
  wrote: boolean,
  writeRevision: number,
  mode: RevisionMode,
): StepResult {
  if (mode === 'exact') {
    const revision = wrote ? writeRevision : state.revision;
    if (headerRevision !== undefined && headerRevision !== revision)
      return fail(`the model's revision is ${revision}, the response header says ${headerRevision}`);
    return { ok: true, state: makeState(revision, keys) };
  }
  if (headerRevision === undefined)
    return { ok: true, state: makeState(wrote ? state.revision + 1 : state.revision, keys) };
  if (wrote && headerRevision <= state.revision)
    return fail(`a write answered revision ${headerRevision}, not above ${state.revision} seen before it`);
  if (headerRevision < state.revision)
    return fail(`a read answered revision ${headerRevision}, below ${state.revision} seen before it`);
  return { ok: true, state: makeState(headerRevision, keys) };
}

/**
 * Checks a read of `key` against the model: undefined when it matches, the key with revisions
 * learnt when the model only had lower bounds, or why it does not match.
 */
function checkRead(
  key: string,
  model: KeyState | undefined,
  seen: KeyValueSeen | null,
  headerRevision: number,
  mode: RevisionMode,
): KeyState | string | undefined {
  if (model === undefined)
    return seen === null ? undefined : `get ${key} returned "${seen.value}", the model has no such key`;
  if (seen === null) return `get ${key} returned nothing, the model has "${model.value}"`;
  if (seen.value !== model.value) return `get ${key} returned "${seen.value}", the model has "${model.value}"`;
  if (seen.version !== model.version)
    return `get ${key} returned version ${seen.version}, the model has ${model.version}`;
  const create = learnRevision(model.create, seen.createRevision);
  const mod = learnRevision(model.mod, seen.modRevision);
  if (create === undefined || mod === undefined)
    return `get ${key} returned create/mod revision ${seen.createRevision}/${seen.modRevision}, the model has ${describeRevision(model.create)}/${describeRevision(model.mod)}`;
  if (mode === 'relative' && seen.modRevision > headerRevision)
    return `get ${key} returned mod revision ${seen.modRevision} above its header revision ${headerRevision}`;
  return create === model.create && mod === model.mod ? undefined : { ...model, create, mod };
}

/** A model revision (or lower bound) reconciled with one seen: the revision, or undefined if they disagree. */
function learnRevision(model: number, seen: number): number | undefined {
  if (model >= 0) return model === seen ? model : undefined;
  return seen >= -model ? seen : undefined;
}

function describeRevision(revision: number): string {
  return revision >= 0 ? String(revision) : `unknown >= ${-revision}`;
}

function compareHolds(key: KeyState | undefined, compare: Compare): boolean {
  // etcd fails every value compare on a missing key; the other targets compare with zero.
  if (compare.target === 'value') {
    if (key === undefined) return false;
    return ordered(key.value < String(compare.operand) ? -1 : key.value > String(compare.operand) ? 1 : 0, compare);
  }
  const actual = key === undefined ? 0 : targetNumber(key, compare.target);
  const operand = Number(compare.operand);
  return ordered(actual < operand ? -1 : actual > operand ? 1 : 0, compare);
}

/** Whether a compare looks at a revision the model only knows a lower bound of. */
function compareUnknown(key: KeyState | undefined, compare: Compare): boolean {
  if (key === undefined || compare.target === 'value' || compare.target === 'version') return false;
  return targetNumber(key, compare.target) < 0;
}

function targetNumber(key: KeyState, target: 'version' | 'create' | 'mod'): number {
  switch (target) {
    case 'version':
      return key.version;
    case 'create':
      return key.create;
    case 'mod':
      return key.mod;
    default:
      return target satisfies never;
  }
}

function ordered(sign: number, compare: Compare): boolean {
  switch (compare.result) {
    case 'equal':
      return sign === 0;
    case 'not-equal':
      return sign !== 0;
    case 'less':
      return sign < 0;
    case 'greater':
      return sign > 0;
    default:
      return compare.result satisfies never;
  }
}

interface Txn {
  readonly compares: readonly Compare[];
  readonly success: readonly TxnRequestOp[];
  readonly failure: readonly TxnRequestOp[];
}

interface TxnOutput {
  readonly revision: number;
  readonly succeeded: boolean;
  readonly results: readonly TxnOpResult[];
}

function asTxn(input: KvInput): Txn {
  return input.type === 'txn' ? input : { compares: [], success: [input], failure: [] };
}

function asTxnOutput(output: KvOutput): TxnOutput {
  switch (output.type) {
    case 'txn':
      return output;
    case 'get':
      return { revision: output.revision, succeeded: true, results: [{ type: 'get', kv: output.kv }] };
    case 'put':
      return { revision: output.revision, succeeded: true, results: [{ type: 'put' }] };
    case 'delete':
      return { revision: output.revision, succeeded: true, results: [{ type: 'delete', deleted: output.deleted }] };
    default:
      return output satisfies never;
  }
}

function describeResult(result: TxnOpResult): string {
  return result.type === 'delete' ? `deleted ${result.deleted}` : `a ${result.type}`;
}

function fail(reason: string): StepResult {
  return { ok: false, reason };
}

function makeState(revision: number, keys: ReadonlyMap<string, KeyState>): KvState {
  const parts = [...keys.keys()].sort().map((k) => {
    const s = keys.get(k) as KeyState;
    return `${k}=${s.value}/${s.version}/${s.create}/${s.mod}`;
  });
  return { revision, keys, hash: `${revision}|${parts.join('|')}` };
}

/** The model's keys as a readable line, for explanations. */
export function describeState(state: KvState): string {
  const keys = [...state.keys.keys()].sort().map((k) => {
    const s = state.keys.get(k) as KeyState;
    return `${k}="${s.value}" (version ${s.version}, create ${describeRevision(s.create)}, mod ${describeRevision(s.mod)})`;
  });
  return `revision ${state.revision}: ${keys.length === 0 ? 'no keys' : keys.join(', ')}`;
}

/** An input as one short line, e.g. `put a=v1` or `txn if version(a) = 2 then put a=v3`. */
export function describeInput(input: KvInput): string {
  if (input.type !== 'txn') return describeOp(input);
  const compares = input.compares.map(
    (c) => `${c.target}(${c.key}) ${{ equal: '=', 'not-equal': '!=', less: '<', greater: '>' }[c.result]} ${c.operand}`,
  );
  const branch = (ops: readonly TxnRequestOp[]) => (ops.length === 0 ? 'nothing' : ops.map(describeOp).join(', '));
  return `txn if ${compares.join(' and ') || 'true'} then ${branch(input.success)} else ${branch(input.failure)}`;
}

function describeOp(op: TxnRequestOp): string {
  switch (op.type) {
    case 'get':
      return `get ${op.key}`;
    case 'put':
      return `put ${op.key}=${op.value}`;
    case 'delete':
      return `delete ${op.key}`;
    default:
      return op satisfies never;
  }
}
