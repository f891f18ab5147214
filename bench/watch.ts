/**
 * Watch fan-out against a real etcd and a tsetcd member started side by side: N watchers on one
 * key spread over several gRPC streams (each its own connection), a writer putting the key M
 * times. Reports events delivered per second, delivery latency (put sent -> event received) and
 * the server's resident memory per watcher, with tsetcd/etcd ratios.
 *
 * Also opens --stream-memory streams of one watcher each (spread over the same connections) and
 * reports the server's memory per stream. The client's and server's CPU over the delivery span
 * are printed because a Node client decoding every event can itself be the bottleneck.
 *
 *   node dist/bench/watch.js [--watchers 10000] [--streams 10] [--puts 50] [--put-interval-ms 10] [--stream-memory 1000] [--json]
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
import { KvConnection } from './kv-client.js';
import { isMainModule } from './load.js';
import { readProcessStats } from './proc-stats.js';

const watchMethod = '/etcdserverpb.Watch/Watch';
const benchKey = Buffer.from('bench/watch');
/** The key of the memory-per-stream watchers: never written, so they only cost memory. */
const streamMemoryKey = Buffer.from('bench/stream-memory');
/** Watchers a run may open; each costs the client too. */
export const watchersMax = 100_000;
export const streamsMax = 256;
export const putsMax = 100_000;
export const streamsMemoryMax = 20_000;
const latencyUsMax = 120_000_000;
const putDeadlineMs = 10_000;
/** Time the server gets to settle before its memory is read. */
const memorySettleMs = 500;
const pollIntervalMs = 20;

export interface WatchBenchOptions {
  readonly watchers: number;
  readonly streams: number;
  readonly puts: number;
  /** Pause between puts; 0 puts as fast as the server answers. */
  readonly putIntervalMs: number;
  /** Gives up waiting for creations or deliveries after this long. */
  readonly timeoutMs: number;
  /** Streams of one watcher each opened after the fan-out to measure memory per stream; 0 skips it. */
  readonly streamMemory?: number;
}

export const watchBenchDefaults: WatchBenchOptions = {
  watchers: 10_000,
  streams: 10,
  puts: 50,
  putIntervalMs: 10,
  timeoutMs: 60_000,
  streamMemory: 1_000,
};

export interface LatencyUs {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** One member's figures. */
export interface WatchSideResult {
  readonly watchersCreated: number;
  readonly createMs: number;
  readonly eventsExpected: number;
  readonly eventsReceived: number;
  readonly elapsedMs: number;
  readonly eventsPerSec: number;
  readonly latencyUs: LatencyUs;
  readonly rssBeforeKb: number;
  readonly rssAfterKb: number;
  readonly rssPerWatcherBytes: number;
  /** From the first put sent to the last put answered. */
  readonly putPhaseMs: number;
  /** The bench process's CPU from the first put to the last event (decoding is the client's bulk). */
  readonly clientCpuMs: number;
  /** The server process tree's CPU over the same span. */
  readonly serverCpuMs: number;
  /** Server memory per extra stream holding one watcher; 0 when not measured (--stream-memory 0). */
  readonly rssPerStreamBytes: number;
}

export interface WatchBenchReport {
  readonly sutLabel: string;
  readonly options: WatchBenchOptions;
  readonly etcd: WatchSideResult;
  readonly sut: WatchSideResult;
  /** sut / etcd; throughput above 1 is better, latency and memory below 1 are better. */
  readonly ratios: Readonly<Record<'eventsPerSec' | 'p50' | 'p99' | 'rssPerWatcher' | 'rssPerStream', number>>;
}

/** What the bench reads from one WatchResponse. */
interface WatchReply {
  readonly created: boolean;
  readonly canceled: boolean;
  /** The values of the events' key-values: the writer puts its put index as the value. */
  readonly values: string[];
}

/** WatchRequest{create_request(1): WatchCreateRequest{key(1)}}. */
function encodeCreate(key: Buffer): Buffer {
  const writer = protobuf.Writer.create();
  writer
    .uint32((1 << 3) | 2)
    .fork()
    .uint32((1 << 3) | 2)
    .bytes(key)
    .ldelim();
  return Buffer.from(writer.finish());
}

/** Reads created (3), canceled (4) and events (11) -> kv (2) -> value (5), skipping the rest. */
export function decodeWatchReply(message: Buffer): WatchReply {
  const reader = protobuf.Reader.create(message);
  let created = false;
  let canceled = false;
  const values: string[] = [];
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    if (field === 3) created = reader.bool();
    else if (field === 4) canceled = reader.bool();
    else if (field === 11) readEvent(reader, reader.uint32() + reader.pos, values);
    else reader.skipType(tag & 7);
  }
  return { created, canceled, values };
}

function readEvent(reader: protobuf.Reader, end: number, values: string[]): void {
  while (reader.pos < end) {
    const tag = reader.uint32();
    if (tag >>> 3 !== 2) {
      reader.skipType(tag & 7);
      continue;
    }
    const kvEnd = reader.uint32() + reader.pos;
    while (reader.pos < kvEnd) {
      const kvTag = reader.uint32();
      if (kvTag >>> 3 === 5) values.push(Buffer.from(reader.bytes()).toString('latin1'));
      else reader.skipType(kvTag & 7);
    }
  }
}

/** State shared by every stream of one measurement. */
class Delivery {
  created = 0;
  canceled = 0;
  received = 0;
  lastReceiptMs = 0;
  readonly sentAtMs: number[] = [];
  readonly histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: latencyUsMax,
    numberOfSignificantValueDigits: 3,
  });

  onReply(reply: WatchReply): void {
    if (reply.created) this.created += 1;
    if (reply.canceled) this.canceled += 1;
    if (reply.values.length === 0) return;
    const nowMs = performance.now();
    for (const value of reply.values) {
      const sentMs = this.sentAtMs[Number(value)];
      if (sentMs !== undefined) this.histogram.recordValue(Math.max(1, Math.round((nowMs - sentMs) * 1000)));
      this.received += 1;
    }
    this.lastReceiptMs = nowMs;
  }
}

async function waitFor(ready: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) return false;
    await sleep(pollIntervalMs);
  }
  return true;
}

/** Opens one watch stream on `client` that hands its replies to `delivery`. */
function openStream(client: grpc.Client, delivery: Delivery): grpc.ClientDuplexStream<Buffer, WatchReply> {
  const call = client.makeBidiStreamRequest<Buffer, WatchReply>(watchMethod, (b) => b, decodeWatchReply);
  call.on('data', (reply: WatchReply) => delivery.onReply(reply));
  call.on('error', () => undefined);
  return call;
}

/**
 * Opens `count` more streams spread over `clients`, one watcher on a key nobody writes each, and
 * returns the server's resident memory growth per stream once they are all created.
 */
async function measureStreamMemory(
  clients: grpc.Client[],
  pid: number,
  count: number,
  timeoutMs: number,
  opened: grpc.ClientDuplexStream<Buffer, WatchReply>[],
): Promise<number> {
  if (count === 0) return 0;
  const delivery = new Delivery();
  try {
    const rssBeforeKb = readProcessStats(pid).rssKb;
    const request = encodeCreate(streamMemoryKey);
    for (let i = 0; i < count; i += 1) {
      const call = openStream(clients[i % clients.length] as grpc.Client, delivery);
      opened.push(call);
      call.write(request);
    }
    await waitFor(() => delivery.created >= count, timeoutMs);
    await sleep(memorySettleMs);
    const rssAfterKb = readProcessStats(pid).rssKb;
    return Math.round(((rssAfterKb - rssBeforeKb) * 1024) / Math.max(1, delivery.created));
  } finally {
    delivery.histogram.destroy();
  }
}

/** Runs the fan-out once against `endpoint`, whose server process is `pid`. */
export async function measureWatch(
  endpoint: string,
  pid: number,
  options: WatchBenchOptions,
): Promise<WatchSideResult> {
  validate(options);
  const target = endpoint.replace(/^https?:\/\//, '');
  const delivery = new Delivery();
  const clients = Array.from(
    { length: options.streams },
    () => new grpc.Client(target, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }),
  );
  const calls = clients.map((client) => openStream(client, delivery));
  const writer = new KvConnection(endpoint);
  try {
    await writer.put(Buffer.from('bench/warm'), Buffer.from('x'), putDeadlineMs);
    await sleep(memorySettleMs);
    const rssBeforeKb = readProcessStats(pid).rssKb;
    const createStartMs = performance.now();
    const request = encodeCreate(benchKey);
    for (let i = 0; i < options.watchers; i += 1) calls[i % options.streams]?.write(request);
    await waitFor(() => delivery.created >= options.watchers, options.timeoutMs);
    const createMs = Math.round(performance.now() - createStartMs);
    await sleep(memorySettleMs);
    const rssAfterKb = readProcessStats(pid).rssKb;
    // After the watcher figure, so the streams' memory does not blur it; their watchers see no puts.
    const rssPerStreamBytes = await measureStreamMemory(
      clients,
      pid,
      options.streamMemory ?? 0,
      options.timeoutMs,
      calls,
    );

    const serverCpuStartMs = readProcessStats(pid).cpuMs;
    const clientCpuStart = process.cpuUsage();
    const startMs = performance.now();
    for (let i = 0; i < options.puts; i += 1) {
      delivery.sentAtMs[i] = performance.now();
      await writer.put(benchKey, Buffer.from(String(i)), putDeadlineMs);
      if (options.putIntervalMs > 0) await sleep(options.putIntervalMs);
    }
    const putPhaseMs = performance.now() - startMs;
    const expected = delivery.created * options.puts;
    await waitFor(() => delivery.received >= expected, options.timeoutMs);
    const clientCpu = process.cpuUsage(clientCpuStart);
    const serverCpuMs = readProcessStats(pid).cpuMs - serverCpuStartMs;
    const elapsedMs = Math.max(1, (delivery.lastReceiptMs || performance.now()) - startMs);
    const h = delivery.histogram;
    return {
      watchersCreated: delivery.created,
      createMs,
      eventsExpected: expected,
      eventsReceived: delivery.received,
      elapsedMs: Math.round(elapsedMs),
      eventsPerSec: Math.round((delivery.received * 1000) / elapsedMs),
      latencyUs: { p50: h.getValueAtPercentile(50), p99: h.getValueAtPercentile(99), max: h.maxValue },
      rssBeforeKb,
      rssAfterKb,
      rssPerWatcherBytes:
        delivery.created === 0 ? 0 : Math.round(((rssAfterKb - rssBeforeKb) * 1024) / delivery.created),
      putPhaseMs: Math.round(putPhaseMs),
      clientCpuMs: Math.round((clientCpu.user + clientCpu.system) / 1000),
      serverCpuMs: Math.round(serverCpuMs),
      rssPerStreamBytes,
    };
  } finally {
    for (const call of calls) call.cancel();
    for (const client of clients) client.close();
    writer.close();
    delivery.histogram.destroy();
  }
}

function validate(options: WatchBenchOptions): void {
  const check = checkIntegerOption;
  check('watchers', options.watchers, 1, watchersMax);
  check('streams', options.streams, 1, streamsMax);
  check('puts', options.puts, 1, putsMax);
  check('put-interval-ms', options.putIntervalMs, 0, 10_000);
  check('stream-memory', options.streamMemory ?? 0, 0, streamsMemoryMax);
}

/** Starts both members, measures etcd first and then the system under test, and stops them. */
export async function runWatchBench(options: WatchBenchOptions, sutSide: MemberCommand): Promise<WatchBenchReport> {
  const measureOn = (command: MemberCommand): Promise<WatchSideResult> =>
    onFreshMember(command, (member) => measureWatch(member.clientUrl, member.pid, options));
  const etcd = await measureOn(etcdCommand());
  const sut = await measureOn(sutSide);
  return {
    sutLabel: sutSide.label,
    options,
    etcd,
    sut,
    ratios: {
      eventsPerSec: ratio(sut.eventsPerSec, etcd.eventsPerSec),
      p50: ratio(sut.latencyUs.p50, etcd.latencyUs.p50),
      p99: ratio(sut.latencyUs.p99, etcd.latencyUs.p99),
      rssPerWatcher: ratio(sut.rssPerWatcherBytes, etcd.rssPerWatcherBytes),
      rssPerStream: ratio(sut.rssPerStreamBytes, etcd.rssPerStreamBytes),
    },
  };
}

/** The report as text: one line per side, then the ratios. */
export function formatWatchReport(report: WatchBenchReport): string {
  const o = report.options;
  const line = (label: string, r: WatchSideResult): string =>
    `${label.padEnd(8)} watchers ${r.watchersCreated} (created in ${r.createMs} ms)  events ${r.eventsReceived}/${r.eventsExpected}  ` +
    `${r.eventsPerSec} events/s  p50 ${(r.latencyUs.p50 / 1000).toFixed(2)} ms  p99 ${(r.latencyUs.p99 / 1000).toFixed(2)} ms  ` +
    `rss ${(r.rssBeforeKb / 1024).toFixed(1)} -> ${(r.rssAfterKb / 1024).toFixed(1)} MiB (${r.rssPerWatcherBytes} B/watcher, ${r.rssPerStreamBytes} B/stream)\n` +
    `${''.padEnd(8)} puts took ${r.putPhaseMs} ms  cpu from first put to last event: server ${r.serverCpuMs} ms, client ${r.clientCpuMs} ms of ${r.elapsedMs} ms`;
  const r = report.ratios;
  return [
    `watch fan-out: ${o.watchers} watchers on one key over ${o.streams} streams, ${o.puts} puts ${o.putIntervalMs} ms apart`,
    line('etcd', report.etcd),
    line(report.sutLabel, report.sut),
    `ratios ${report.sutLabel}/etcd: events/s ${r.eventsPerSec}, p50 ${r.p50}, p99 ${r.p99}, memory per watcher ${r.rssPerWatcher}, per stream ${r.rssPerStream}`,
  ].join('\n');
}

export function parseWatchArgs(argv: readonly string[]): { options: WatchBenchOptions; json: boolean } {
  const d = watchBenchDefaults;
  const { values } = parseArgs({
    args: [...argv],
    options: {
      watchers: { type: 'string', default: String(d.watchers) },
      streams: { type: 'string', default: String(d.streams) },
      puts: { type: 'string', default: String(d.puts) },
      'put-interval-ms': { type: 'string', default: String(d.putIntervalMs) },
      'timeout-ms': { type: 'string', default: String(d.timeoutMs) },
      'stream-memory': { type: 'string', default: String(d.streamMemory) },
      json: { type: 'boolean', default: false },
    },
  });
  const options: WatchBenchOptions = {
    watchers: Number(values.watchers),
    streams: Number(values.streams),
    puts: Number(values.puts),
    putIntervalMs: Number(values['put-interval-ms']),
    timeoutMs: Number(values['timeout-ms']),
    streamMemory: Number(values['stream-memory']),
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
  const { options, json } = parseWatchArgs(argv);
  const report = await runWatchBench(options, sut.command);
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : `${formatWatchReport(report)}\n`);
  return 0;
}

if (isMainModule(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
