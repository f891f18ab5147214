/**
 * The chaos run's clients: each draws its operations from its own seeded generator (get, put,
 * delete, CAS as a txn with one compare, two-key txns) over a small key set, sends them over gRPC
 * to one member and moves to the next member after an error, and records every operation with its
 * call and return times. A write that errs has an unknown outcome; a read that errs is recorded
 * as unknown too and constrains nothing.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { Prng } from '../../src/lib/prng.js';
import { EtcdGrpc, describeAnswer } from '../support/etcd-grpc.js';
import type { Operation } from '../support/linearizability/checker.js';
import type { Compare, CompareTarget, KeyValueSeen, KvInput, KvOutput } from '../support/linearizability/kv-model.js';
import { outputFrom, requestFor } from '../support/linearizability/kv-wire.js';

/** A client's operations in one run, whatever its length. */
const opsPerClientMax = 200_000;
/** Pause after an error before the next operation (on the next member). */
const errorPauseMs = 100;

export interface WorkloadOptions {
  readonly seed: number;
  readonly clients: number;
  readonly keys: readonly string[];
  /** gRPC deadline of each operation; one still waiting then has an unknown outcome. */
  readonly opDeadlineMs: number;
  /**
   * For the harness's self-test only: each client answers some gets from its own cache of what it
   * read before, as a broken store serving stale reads would.
   */
  readonly staleReads?: boolean;
}

/**
 * How grpc-js fails a call its load balancer could not pick a connection for (UnavailablePicker):
 * the request was never written to a socket.
 */
const notSentPattern = /^No connection established/;

/** Operation mix, as cumulative shares of a draw in [0, 1). */
const mix = { get: 0.3, put: 0.55, delete: 0.65, cas: 0.9 } as const;
const compareTargets: readonly CompareTarget[] = ['version', 'mod', 'create', 'value'];

export class Workload {
  readonly ops: Operation[] = [];
  /** Calls grpc-js failed before sending them (no connection to the member): not in the history. */
  notSent = 0;
  /** Errors that left an outcome unknown, by their first sentence, for the report. */
  readonly unknownReasons = new Map<string, number>();
  /** Responses that could not be read as an answer to what was asked. */
  readonly problems: string[] = [];
  private stopped = false;
  private loops: Array<Promise<void>> = [];
  private readonly connections = new Map<string, EtcdGrpc>();
  private readonly startMs = performance.now();

  constructor(
    private readonly options: WorkloadOptions,
    private readonly endpoints: readonly string[],
  ) {}

  start(): void {
    const seeds = new Prng(this.options.seed);
    this.loops = Array.from({ length: this.options.clients }, (_, client) => this.loop(client, seeds.nextUint32()));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
    for (const connection of this.connections.values()) connection.close();
  }

  private async loop(client: number, seed: number): Promise<void> {
    const prng = new Prng(seed);
    const staleness = new Prng(seed ^ 0x51a1e);
    const seen = new Map<string, KeyValueSeen | null>();
    const cache = new Map<string, KvOutput>();
    let endpoint = client % this.endpoints.length;
    for (let n = 0; n < opsPerClientMax && !this.stopped; n += 1) {
      const input = nextInput(prng, this.options.keys, seen, `c${client}.${n}`);
      const cached = input.type === 'get' ? cache.get(input.key) : undefined;
      if (this.options.staleReads === true && cached !== undefined && staleness.chance(0.3)) {
        const at = this.now();
        this.record(client, input, cached, at, at);
        continue;
      }
      const callMs = this.now();
      const { method, request } = requestFor(input);
      const answer = await this.connection(this.endpoints[endpoint] as string).unary(method, request);
      const returnMs = this.now();
      if (answer.code === grpc.status.UNAVAILABLE && notSentPattern.test(answer.message)) {
        // grpc-js refused the call at pick time: nothing reached a member, so nothing happened.
        this.notSent += 1;
        endpoint = (endpoint + 1) % this.endpoints.length;
        await sleep(errorPauseMs);
        continue;
      }
      if (answer.code !== grpc.status.OK) {
        const reason = answer.message.replace(/\d+(\.\d+)?/g, 'N').split(/\.\s/)[0] ?? '';
        this.unknownReasons.set(reason, (this.unknownReasons.get(reason) ?? 0) + 1);
        this.ops.push({
          id: this.ops.length,
          client,
          input,
          output: undefined,
          callMs,
          returnMs: Infinity,
          error: describeAnswer(answer),
        });
        endpoint = (endpoint + 1) % this.endpoints.length;
        await sleep(errorPauseMs);
        continue;
      }
      let output: KvOutput;
      try {
        output = outputFrom(input, answer.response);
      } catch (error) {
        this.problems.push(`client ${client}: a response of the wrong shape: ${(error as Error).message}`);
        continue;
      }
      this.record(client, input, output, callMs, returnMs);
      learn(input, output, seen);
      if (input.type === 'get') cache.set(input.key, output);
    }
  }

  private record(client: number, input: KvInput, output: KvOutput, callMs: number, returnMs: number): void {
    this.ops.push({ id: this.ops.length, client, input, output, callMs, returnMs });
  }

  private connection(endpoint: string): EtcdGrpc {
    let connection = this.connections.get(endpoint);
    if (connection === undefined) {
      connection = new EtcdGrpc(endpoint, this.options.opDeadlineMs);
      this.connections.set(endpoint, connection);
    }
    return connection;
  }

  /** Milliseconds since the workload was made, on the monotonic clock. */
  private now(): number {
    return performance.now() - this.startMs;
  }
}

/**
 * The next operation: kinds, keys and values come from the generator alone; compare operands
 * from what this client last read of the key, so CAS succeeds often enough to matter.
 */
function nextInput(
  prng: Prng,
  keys: readonly string[],
  seen: Map<string, KeyValueSeen | null>,
  value: string,
): KvInput {
  const draw = prng.nextFloat();
  const key = prng.pick(keys);
  if (draw < mix.get) return { type: 'get', key };
  if (draw < mix.put) return { type: 'put', key, value };
  if (draw < mix.delete) return { type: 'delete', key };
  if (draw < mix.cas) {
    const compare = compareOn(key, prng.pick(compareTargets), seen.get(key));
    const write = prng.chance(0.8) ? ({ type: 'put', key, value } as const) : ({ type: 'delete', key } as const);
    return { type: 'txn', compares: [compare], success: [write], failure: [{ type: 'get', key }] };
  }
  const other = keys[(keys.indexOf(key) + 1 + prng.nextInt(keys.length - 1)) % keys.length] as string;
  if (prng.chance(0.5))
    return {
      type: 'txn',
      compares: [],
      success: [
        { type: 'get', key },
        { type: 'get', key: other },
      ],
      failure: [],
    };
  return {
    type: 'txn',
    compares: [compareOn(key, 'version', seen.get(key))],
    success: [
      { type: 'put', key, value },
      { type: 'put', key: other, value: `${value}b` },
    ],
    failure: [
      { type: 'get', key },
      { type: 'get', key: other },
    ],
  };
}

/** `target(key) = what was last read`, or the value for a missing key when nothing was. */
function compareOn(key: string, target: CompareTarget, last: KeyValueSeen | null | undefined): Compare {
  switch (target) {
    case 'version':
      return { key, target, result: 'equal', operand: last?.version ?? 0 };
    case 'mod':
      return { key, target, result: 'equal', operand: last?.modRevision ?? 0 };
    case 'create':
      return { key, target, result: 'equal', operand: last?.createRevision ?? 0 };
    case 'value':
      return { key, target, result: 'equal', operand: last?.value ?? '' };
    default:
      return target satisfies never;
  }
}

/** Remembers what reads (plain or inside a txn) returned, for the next compares. */
function learn(input: KvInput, output: KvOutput, seen: Map<string, KeyValueSeen | null>): void {
  if (input.type === 'get' && output.type === 'get') seen.set(input.key, output.kv);
  if (input.type !== 'txn' || output.type !== 'txn') return;
  const branch = output.succeeded ? input.success : input.failure;
  for (const [i, result] of output.results.entries()) {
    const op = branch[i];
    if (result.type === 'get' && op !== undefined) seen.set(op.key, result.kv);
  }
}
