/**
 * Lease keep-alive throughput against a real etcd and a tsetcd member: K leases granted, then
 * several LeaseKeepAlive streams (each its own connection) renew them round-robin with a bounded
 * number of requests in flight per stream. Reports grants/s, keep-alives/s and keep-alive
 * latency, with tsetcd/etcd ratios.
 *
 *   node dist/bench/lease.js [--leases 1000] [--streams 4] [--in-flight 64] [--duration 3] [--json]
 *
 * TSETCD_CMD chooses the second member (TSETCD_CMD=/usr/bin/etcd compares etcd with itself).
 */
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import * as hdr from 'hdr-histogram-js';
import protobuf from 'protobufjs';
import { checkIntegerOption, onFreshMember, ratio } from './side-by-side.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../test/support/sut.js';
import { isMainModule } from './load.js';

const grantMethod = '/etcdserverpb.Lease/LeaseGrant';
const keepAliveMethod = '/etcdserverpb.Lease/LeaseKeepAlive';
export const leasesMax = 100_000;
export const streamsMax = 64;
export const inFlightMax = 4_096;
/** Concurrent LeaseGrant calls while setting up. */
const grantConcurrency = 32;
const grantTtlSec = 600;
const callDeadlineMs = 10_000;
const latencyUsMax = 60_000_000;
/** How long in-flight keep-alives get to come back after the measured period. */
const drainMs = 2_000;

export interface LeaseBenchOptions {
  readonly leases: number;
  readonly streams: number;
  readonly inFlight: number;
  readonly durationMs: number;
}

export const leaseBenchDefaults: LeaseBenchOptions = { leases: 1_000, streams: 4, inFlight: 64, durationMs: 3_000 };

export interface LeaseSideResult {
  readonly leasesGranted: number;
  readonly grantsPerSec: number;
  readonly keepAlives: number;
  /** Responses whose TTL was not positive: the lease was not found. */
  readonly keepAliveErrors: number;
  readonly keepAlivesPerSec: number;
  readonly latencyUs: { readonly p50: number; readonly p99: number; readonly max: number };
}

export interface LeaseBenchReport {
  readonly sutLabel: string;
  readonly options: LeaseBenchOptions;
  readonly etcd: LeaseSideResult;
  readonly sut: LeaseSideResult;
  readonly ratios: Readonly<Record<'grantsPerSec' | 'keepAlivesPerSec' | 'p50' | 'p99', number>>;
}

/** LeaseGrantRequest{TTL(1)}. */
function encodeGrant(ttlSec: number): Buffer {
  return Buffer.from(
    protobuf.Writer.create()
      .uint32(1 << 3)
      .int64(ttlSec)
      .finish(),
  );
}

/**
 * Field 2 (ID) of a LeaseGrantResponse as its raw varint bytes: lease ids use all 63 bits, beyond
 * a JavaScript number, and the keep-alive request only needs them copied.
 */
export function grantedIdVarint(message: Buffer): Buffer {
  const reader = protobuf.Reader.create(message);
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag === 2 << 3) {
      const start = reader.pos;
      reader.skipType(0);
      return message.subarray(start, reader.pos);
    }
    reader.skipType(tag & 7);
  }
  throw new Error('LeaseGrantResponse without an ID');
}

/** TTL (field 3) of a LeaseKeepAliveResponse; 0 when absent (lease not found). */
export function keepAliveTtl(message: Buffer): number {
  const reader = protobuf.Reader.create(message);
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag === 3 << 3) return Number(reader.int64());
    reader.skipType(tag & 7);
  }
  return 0;
}

function grant(client: grpc.Client): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest<Buffer, Buffer>(
      grantMethod,
      (b) => b,
      (b) => b,
      encodeGrant(grantTtlSec),
      new grpc.Metadata(),
      { deadline: Date.now() + callDeadlineMs },
      (error, reply) =>
        error !== null || reply === undefined
          ? reject(error ?? new Error('empty reply'))
          : resolve(grantedIdVarint(reply)),
    );
  });
}

/** Grants `count` leases with bounded concurrency; returns each id's varint bytes. */
async function grantAll(client: grpc.Client, count: number): Promise<Buffer[]> {
  const ids: Buffer[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(grantConcurrency, count) }, async () => {
      while (next < count) {
        next += 1;
        ids.push(await grant(client));
      }
    }),
  );
  return ids;
}

/** One keep-alive stream renewing its share of the leases, `inFlight` requests at a time. */
class KeepAliveStream {
  responses = 0;
  errors = 0;
  private readonly sentAtMs: number[] = [];
  private next = 0;
  private stopped = false;
  private readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;

  constructor(
    client: grpc.Client,
    private readonly requests: readonly Buffer[],
    private readonly histogram: hdr.Histogram,
    private readonly counting: () => boolean,
  ) {
    this.call = client.makeBidiStreamRequest<Buffer, Buffer>(
      keepAliveMethod,
      (b) => b,
      (b) => b,
    );
    this.call.on('data', (reply: Buffer) => this.onReply(reply));
    this.call.on('error', () => undefined);
  }

  start(inFlight: number): void {
    for (let i = 0; i < inFlight; i += 1) this.send();
  }

  stop(): void {
    this.stopped = true;
  }

  get pending(): number {
    return this.sentAtMs.length;
  }

  close(): void {
    this.call.cancel();
  }

  private send(): void {
    if (this.stopped || this.requests.length === 0) return;
    const request = this.requests[this.next % this.requests.length] as Buffer;
    this.next += 1;
    this.sentAtMs.push(performance.now());
    this.call.write(request);
  }

  /** Keep-alive responses come back in request order on a stream, so the oldest send matches. */
  private onReply(reply: Buffer): void {
    const sentMs = this.sentAtMs.shift();
    if (this.counting() && sentMs !== undefined) {
      this.histogram.recordValue(Math.max(1, Math.round((performance.now() - sentMs) * 1000)));
      this.responses += 1;
      if (keepAliveTtl(reply) <= 0) this.errors += 1;
    }
    this.send();
  }
}

/** Runs grants and keep-alives once against `endpoint`. */
export async function measureLease(endpoint: string, options: LeaseBenchOptions): Promise<LeaseSideResult> {
  validate(options);
  const target = endpoint.replace(/^https?:\/\//, '');
  const clients = Array.from(
    { length: options.streams },
    () => new grpc.Client(target, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }),
  );
  const histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: latencyUsMax,
    numberOfSignificantValueDigits: 3,
  });
  const streams: KeepAliveStream[] = [];
  try {
    const grantStartMs = performance.now();
    const ids = await grantAll(clients[0] as grpc.Client, options.leases);
    const grantMs = performance.now() - grantStartMs;
    let counting = true;
    clients.forEach((client, s) => {
      const mine = ids
        .filter((_, i) => i % options.streams === s)
        .map((id) => Buffer.concat([Buffer.from([1 << 3]), id]));
      streams.push(new KeepAliveStream(client, mine, histogram, () => counting));
    });
    const startMs = performance.now();
    for (const stream of streams) stream.start(options.inFlight);
    await sleep(options.durationMs);
    counting = false;
    const elapsedMs = performance.now() - startMs;
    for (const stream of streams) stream.stop();
    const drainDeadline = Date.now() + drainMs;
    while (streams.some((s) => s.pending > 0) && Date.now() < drainDeadline) await sleep(20);
    const keepAlives = streams.reduce((sum, s) => sum + s.responses, 0);
    return {
      leasesGranted: ids.length,
      grantsPerSec: Math.round((ids.length * 1000) / Math.max(1, grantMs)),
      keepAlives,
      keepAliveErrors: streams.reduce((sum, s) => sum + s.errors, 0),
      keepAlivesPerSec: Math.round((keepAlives * 1000) / elapsedMs),
      latencyUs: {
        p50: histogram.getValueAtPercentile(50),
        p99: histogram.getValueAtPercentile(99),
        max: histogram.maxValue,
      },
    };
  } finally {
    for (const stream of streams) stream.close();
    for (const client of clients) client.close();
    histogram.destroy();
  }
}

function validate(options: LeaseBenchOptions): void {
  const check = checkIntegerOption;
  check('leases', options.leases, 1, leasesMax);
  check('streams', options.streams, 1, streamsMax);
  check('in-flight', options.inFlight, 1, inFlightMax);
  check('duration (ms)', options.durationMs, 100, 3_600_000);
}

/** Starts a fresh member per side, etcd first, and measures each. */
export async function runLeaseBench(options: LeaseBenchOptions, sutSide: MemberCommand): Promise<LeaseBenchReport> {
  const measureOn = (command: MemberCommand): Promise<LeaseSideResult> =>
    onFreshMember(command, (member) => measureLease(member.clientUrl, options));
  const etcd = await measureOn(etcdCommand());
  const sut = await measureOn(sutSide);
  return {
    sutLabel: sutSide.label,
    options,
    etcd,
    sut,
    ratios: {
      grantsPerSec: ratio(sut.grantsPerSec, etcd.grantsPerSec),
      keepAlivesPerSec: ratio(sut.keepAlivesPerSec, etcd.keepAlivesPerSec),
      p50: ratio(sut.latencyUs.p50, etcd.latencyUs.p50),
      p99: ratio(sut.latencyUs.p99, etcd.latencyUs.p99),
    },
  };
}

export function formatLeaseReport(report: LeaseBenchReport): string {
  const o = report.options;
  const line = (label: string, r: LeaseSideResult): string =>
    `${label.padEnd(8)} grants ${r.leasesGranted} (${r.grantsPerSec}/s)  keep-alives ${r.keepAlives} (${r.keepAlivesPerSec}/s, ${r.keepAliveErrors} not found)  ` +
    `p50 ${(r.latencyUs.p50 / 1000).toFixed(2)} ms  p99 ${(r.latencyUs.p99 / 1000).toFixed(2)} ms`;
  const r = report.ratios;
  return [
    `lease keep-alive: ${o.leases} leases over ${o.streams} streams, ${o.inFlight} in flight per stream, ${o.durationMs} ms`,
    line('etcd', report.etcd),
    line(report.sutLabel, report.sut),
    `ratios ${report.sutLabel}/etcd: grants/s ${r.grantsPerSec}, keep-alives/s ${r.keepAlivesPerSec}, p50 ${r.p50}, p99 ${r.p99}`,
  ].join('\n');
}

export function parseLeaseArgs(argv: readonly string[]): { options: LeaseBenchOptions; json: boolean } {
  const d = leaseBenchDefaults;
  const { values } = parseArgs({
    args: [...argv],
    options: {
      leases: { type: 'string', default: String(d.leases) },
      streams: { type: 'string', default: String(d.streams) },
      'in-flight': { type: 'string', default: String(d.inFlight) },
      duration: { type: 'string', default: String(d.durationMs / 1000) },
      json: { type: 'boolean', default: false },
    },
  });
  const options: LeaseBenchOptions = {
    leases: Number(values.leases),
    streams: Number(values.streams),
    inFlight: Number(values['in-flight']),
    durationMs: Math.round(Number(values.duration) * 1000),
  };
  validate(options);
  return { options, json: values.json === true };
}

/** Entry point; returns the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const sut = sutCommand();
  if (sut.command === undefined) {
    process.stderr.write(`cannot compare: ${sut.skipReason}\n`);
    return 2;
  }
  const { options, json } = parseLeaseArgs(argv);
  const report = await runLeaseBench(options, sut.command);
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : `${formatLeaseReport(report)}\n`);
  return 0;
}

if (isMainModule(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
