/**
 * A small seeded fuzzing harness for the parsers that face the network. Each case takes its own
 * seed: a valid input from the parser's corpus is mutated (bit flips, byte inserts and deletes,
 * truncation, corrupted length fields, huge varints, spliced inputs) or random bytes are made up,
 * and the parser's property is checked. A failure prints the seed and the input as hex; the case
 * replays exactly with FUZZ_SEED=<seed>. FUZZ_ITERATIONS sets the cases per parser (a small
 * default keeps `npm test` quick; see test/fuzz/README.md for a long run).
 */
import { Prng } from '../../src/lib/prng.js';

/** Cases per parser when FUZZ_ITERATIONS is not set. */
const defaultIterations = 2_000;
/** One input must be parsed within this bound, twice in a row; a slower one counts as a hang. */
export const caseTimeMsMax = 500;
/** Mutated inputs stay below this size unless a target allows more, so a case stays cheap. */
const inputBytesMaxDefault = 4096;

/** The cases to run per parser, from FUZZ_ITERATIONS. */
export function fuzzIterations(): number {
  const text = process.env.FUZZ_ITERATIONS;
  if (text === undefined || text === '') return defaultIterations;
  const count = Number(text);
  if (!Number.isSafeInteger(count) || count < 1)
    throw new Error(`FUZZ_ITERATIONS must be a positive integer, got ${text}`);
  return count;
}

/** The seed of case `index`: FUZZ_SEED replays one case; otherwise seeds run from FUZZ_BASE_SEED (default 1). */
function seeds(iterations: number): number[] {
  const replay = process.env.FUZZ_SEED;
  if (replay !== undefined && replay !== '') return [Number(replay)];
  const base = Number(process.env.FUZZ_BASE_SEED ?? '1');
  return Array.from({ length: iterations }, (_, index) => base + index);
}

export interface FuzzTarget {
  /** Valid inputs, made by our own encoders or by protobufjs, to mutate. */
  corpus: readonly Uint8Array[];
  /**
   * Parses one input and checks its property: returns when the parser returned a good value or
   * threw an error of its documented kind; throws (an assertion) otherwise.
   */
  check(input: Uint8Array): void;
  /** Extra mutations that know the format (e.g. a length field's place). */
  mutations?: ReadonlyArray<(input: Uint8Array, prng: Prng) => Uint8Array>;
  /** Mutated inputs are cut to this size (default 4 KiB); deep nesting needs more. */
  inputBytesMax?: number;
}

/** Counts per target, so a long run can report how many inputs were accepted and refused. */
export interface FuzzReport {
  cases: number;
  elapsedMs: number;
}

/** Runs `target` for the configured cases; the first failing case throws with its seed and input. */
export function runFuzz(name: string, target: FuzzTarget, iterations = fuzzIterations()): FuzzReport {
  const startedMs = performance.now();
  const list = seeds(iterations);
  for (const seed of list) runCase(name, target, seed);
  return { cases: list.length, elapsedMs: performance.now() - startedMs };
}

/** Cases between two turns of the event loop in runFuzzYielding. */
const casesPerTurn = 500;

/**
 * runFuzz for targets that leave work to the event loop (a connection closes on the next tick):
 * it lets the loop turn every few hundred cases, so a long run does not hold every case's leftovers.
 */
export async function runFuzzYielding(
  name: string,
  target: FuzzTarget,
  iterations = fuzzIterations(),
): Promise<FuzzReport> {
  const startedMs = performance.now();
  const list = seeds(iterations);
  for (let index = 0; index < list.length; index++) {
    runCase(name, target, list[index]!);
    if (index % casesPerTurn === casesPerTurn - 1) await new Promise((resolve) => setImmediate(resolve));
  }
  return { cases: list.length, elapsedMs: performance.now() - startedMs };
}

function runCase(name: string, target: FuzzTarget, seed: number): void {
  const input = fuzzInput(new Prng(seed), target);
  const caseStartMs = performance.now();
  try {
    target.check(input);
  } catch (error) {
    throw failure(name, seed, input, error);
  }
  const caseMs = performance.now() - caseStartMs;
  if (caseMs > caseTimeMsMax) checkAgainInTime(name, seed, input, target, caseMs);
}

/**
 * A slow case runs once more and fails only when it is slow again: a parser that blows up on an
 * input does so every time, while a garbage collection or a busy machine does not repeat.
 */
function checkAgainInTime(name: string, seed: number, input: Uint8Array, target: FuzzTarget, firstMs: number): void {
  const startMs = performance.now();
  target.check(input);
  const againMs = performance.now() - startMs;
  if (againMs > caseTimeMsMax) {
    const text = `took ${firstMs.toFixed(0)} ms and then ${againMs.toFixed(0)} ms, over ${caseTimeMsMax} ms`;
    throw failure(name, seed, input, new Error(text));
  }
}

function failure(name: string, seed: number, input: Uint8Array, error: unknown): Error {
  const hex = Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('hex');
  const shown = hex.length > 4096 ? `${hex.slice(0, 4096)}... (${input.length} bytes)` : hex;
  const cause = error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error);
  const message = `fuzz ${name} failed at seed ${seed} (replay with FUZZ_SEED=${seed}): ${cause}\ninput: ${shown}`;
  // Printed as well as thrown: node --test may shorten a long assertion message.
  console.error(message);
  return new Error(message, { cause: error });
}

/** One case's input: mostly mutations of the corpus, sometimes random bytes. */
export function fuzzInput(prng: Prng, target: FuzzTarget): Uint8Array {
  if (target.corpus.length === 0 || prng.chance(0.1))
    return randomBytes(prng, prng.nextInt(prng.chance(0.5) ? 64 : 1024));
  const inputBytesMax = target.inputBytesMax ?? inputBytesMaxDefault;
  let input: Uint8Array = Uint8Array.from(prng.pick(target.corpus));
  const mutations = [...genericMutations, ...(target.mutations ?? [])];
  const rounds = 1 + prng.nextInt(prng.chance(0.2) ? 16 : 4);
  for (let round = 0; round < rounds; round++) {
    if (prng.chance(0.05)) input = splice(input, Uint8Array.from(prng.pick(target.corpus)), prng);
    else input = prng.pick(mutations)(input, prng);
    if (input.length > inputBytesMax) input = input.subarray(0, inputBytesMax);
  }
  return input;
}

export function randomBytes(prng: Prng, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = prng.nextInt(256);
  return bytes;
}

/** A byte likely to sit on a boundary: 0, 0x7f, 0x80, 0xff and their neighbours, or any byte. */
function interestingByte(prng: Prng): number {
  return prng.chance(0.5) ? prng.pick([0x00, 0x01, 0x3f, 0x40, 0x7f, 0x80, 0x81, 0xfe, 0xff]) : prng.nextInt(256);
}

function bitFlip(input: Uint8Array, prng: Prng): Uint8Array {
  if (input.length === 0) return input;
  const at = prng.nextInt(input.length);
  input[at] = input[at]! ^ (1 << prng.nextInt(8));
  return input;
}

function byteSet(input: Uint8Array, prng: Prng): Uint8Array {
  if (input.length === 0) return input;
  input[prng.nextInt(input.length)] = interestingByte(prng);
  return input;
}

function byteInsert(input: Uint8Array, prng: Prng): Uint8Array {
  const at = prng.nextInt(input.length + 1);
  const inserted = randomBytes(prng, 1 + prng.nextInt(8));
  return concat(input.subarray(0, at), inserted, input.subarray(at));
}

function byteDelete(input: Uint8Array, prng: Prng): Uint8Array {
  if (input.length === 0) return input;
  const at = prng.nextInt(input.length);
  return concat(input.subarray(0, at), input.subarray(at + 1 + prng.nextInt(Math.min(8, input.length - at))));
}

function truncate(input: Uint8Array, prng: Prng): Uint8Array {
  return input.subarray(0, prng.nextInt(input.length + 1));
}

/** A varint of 10 or more bytes (a huge or negative length, or a varint too long to be one). */
function hugeVarint(input: Uint8Array, prng: Prng): Uint8Array {
  const at = prng.nextInt(input.length + 1);
  const length = prng.pick([5, 9, 10, 11, 16]);
  const varint = new Uint8Array(length).fill(0xff);
  varint[length - 1] = prng.chance(0.5) ? 0x01 : 0x7f;
  const replaced = prng.chance(0.5) ? 1 : 0;
  return concat(input.subarray(0, at), varint, input.subarray(Math.min(input.length, at + replaced)));
}

/** A 1-, 2- or 4-byte big-endian field set to a boundary value (lengths, counts, sizes). */
function lengthField(input: Uint8Array, prng: Prng): Uint8Array {
  const width = prng.pick([1, 2, 4]);
  if (input.length < width) return input;
  const at = prng.nextInt(input.length - width + 1);
  const value = prng.pick([0, 1, 0x7f, 0x80, 0xffff, 0x7fffffff, 0xffffffff, input.length, input.length + 1]);
  for (let i = 0; i < width; i++) input[at + i] = (value >>> (8 * (width - 1 - i))) & 0xff;
  return input;
}

/** A piece of the input repeated, which grows nesting and repeated fields. */
function duplicate(input: Uint8Array, prng: Prng): Uint8Array {
  if (input.length === 0) return input;
  const start = prng.nextInt(input.length);
  const piece = input.subarray(start, start + 1 + prng.nextInt(input.length - start));
  const copies = 1 + prng.nextInt(8);
  return concat(input, ...Array.from({ length: copies }, () => piece));
}

function splice(first: Uint8Array, second: Uint8Array, prng: Prng): Uint8Array {
  return concat(first.subarray(0, prng.nextInt(first.length + 1)), second.subarray(prng.nextInt(second.length + 1)));
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

const genericMutations = [bitFlip, byteSet, byteInsert, byteDelete, truncate, hugeVarint, lengthField, duplicate];

/**
 * True when `error` is exactly of class `kind` (not a subclass such as a TypeError when `kind` is
 * Error) and has a non-empty message that names no internal failure.
 */
export function isClearError(error: unknown, ...kinds: Array<abstract new (...args: never[]) => Error>): boolean {
  if (!(error instanceof Error)) return false;
  if (!kinds.some((kind) => Object.getPrototypeOf(error) === kind.prototype)) return false;
  return error.message.length > 0 && !/Maximum call stack|invariant|assert/i.test(error.message);
}

/** Runs `parse`; a thrown error must be clear and of one of `kinds`. Returns the value or undefined. */
export function parseOrRefuse<T>(
  parse: () => T,
  ...kinds: Array<abstract new (...args: never[]) => Error>
): T | undefined {
  try {
    return parse();
  } catch (error) {
    if (isClearError(error, ...kinds)) return undefined;
    throw error;
  }
}
