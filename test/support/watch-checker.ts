/**
 * A watch-guarantee checker for clusters under concurrent writers, compaction and leader changes.
 *
 * Writers record what they attempted (WriteIntent) and, when acknowledged, the revision it made.
 * A write that failed may or may not have happened, so its revision is found afterwards from
 * the unique values it put; the events every revision must carry are then derived by replaying
 * the intents in revision order over a model of the keys, never taken from a watcher on trust.
 * ResumingWatcher follows one logical watch across broken streams and members, resuming from the
 * next revision; checkWatcher() says what it got wrong: gaps, duplicates, order, split or wrong
 * events, inexact resumption.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { loadProtos, type WireMessage } from '../../src/api/proto-wire.js';
import { RawWatch, waitUntil } from '../watch/clients.js';
import { schemelessEndpoint } from './cluster.js';

/** How long a new watch may take to be answered with its created response. */
export const watchCreateWaitMsDefault = 5_000;
/** Resumptions one watcher may make before it gives up; a test with two leader changes needs a few. */
export const watchResumesMax = 8;
/** Attempts to create a watcher's first stream while the member's connection is not established yet. */
export const watchStartAttemptsMax = 20;
/** Pause between those attempts. */
const watchStartRetryPauseMs = 250;
/** How a failed attempt to resume is noted in a watcher's problems (a chaos run expects some: members are down). */
export const resumeFailedPrefix = 'resuming from';
/** Problems listed per watcher in a failure message; the rest are counted. */
const problemsShownMax = 12;

/** One event in a comparable form: "PUT key=value", "DELETE key", with " prev=..." for prev-kv watchers. */
export type EventText = string;

/** One write a writer attempted: one transaction of an optional range delete followed by puts. */
export interface WriteIntent {
  /** Unique per attempt, e.g. "w2#17"; every value it puts is unique too, which identifies it. */
  readonly id: string;
  readonly deleteRange?: { readonly key: string; readonly rangeEnd: string };
  readonly puts: ReadonlyArray<readonly [key: string, value: string]>;
}

interface Acknowledged {
  readonly intent: WriteIntent;
  /** The header revision of the response, which etcd sets to the revision the write made. */
  readonly headerRevision: number;
  /** Keys the range delete reported as deleted (its prev_kvs), in the order returned. */
  readonly deleted: readonly string[];
}

/** Everything the writers attempted: acknowledged writes by revision, and writes of unknown outcome. */
export class WriteHistory {
  readonly acknowledged = new Map<number, Acknowledged>();
  readonly unknown: Array<{ readonly intent: WriteIntent; readonly error: string }> = [];
  readonly problems: string[] = [];

  acknowledge(intent: WriteIntent, revision: number, headerRevision: number, deleted: readonly string[]): void {
    const other = this.acknowledged.get(revision);
    if (other !== undefined)
      this.problems.push(`writes ${other.intent.id} and ${intent.id} were both acknowledged at revision ${revision}`);
    this.acknowledged.set(revision, { intent, headerRevision, deleted });
  }

  markUnknown(intent: WriteIntent, error: string): void {
    this.unknown.push({ intent, error });
  }

  /** Acknowledged writes whose response header named another revision than the one they made. */
  headerMismatches(): string[] {
    return [...this.acknowledged]
      .filter(([revision, ack]) => ack.headerRevision !== revision)
      .map(([revision, ack]) => `${ack.intent.id} made ${revision}, header said ${ack.headerRevision}`);
  }
}

/** One watch event as the checker needs it. */
export interface SeenEvent {
  readonly type: 'PUT' | 'DELETE';
  readonly key: string;
  readonly value: string;
  /** The previous value, '-' for none; undefined when the watch did not ask for it. */
  readonly prev: string | undefined;
  readonly revision: number;
}

/** The expected history of revisions first..last, derived from the intents. */
export interface Resolution {
  readonly first: number;
  readonly last: number;
  /** Expected events per revision, without and with previous values. */
  readonly events: ReadonlyMap<number, readonly EventText[]>;
  readonly eventsWithPrev: ReadonlyMap<number, readonly EventText[]>;
  /** The model's keys and values after the last revision. */
  readonly finalState: ReadonlyMap<string, string>;
  /** Ids of writes with an unknown outcome that did happen, with their revision. */
  readonly unknownApplied: ReadonlyMap<string, number>;
  readonly problems: readonly string[];
}

/** Formats an event; with prev when the watcher asked for previous values. */
export function eventText(event: Pick<SeenEvent, 'type' | 'key' | 'value' | 'prev'>): EventText {
  const body = event.type === 'PUT' ? `PUT ${event.key}=${event.value}` : `DELETE ${event.key}`;
  return event.prev === undefined ? body : `${body} prev=${event.prev}`;
}

/**
 * Replays revisions first..last: each one is made by the acknowledged write at that revision, or
 * by the one unknown-outcome write whose unique put values some watcher saw there. `views` are the
 * events watchers saw, used only to identify which unknown write made a revision.
 */
export function resolveHistory(
  history: WriteHistory,
  views: ReadonlyArray<ReadonlyMap<number, readonly SeenEvent[]>>,
  first: number,
  last: number,
): Resolution {
  const problems = [...history.problems];
  const model = new Map<string, string>();
  const events = new Map<number, EventText[]>();
  const eventsWithPrev = new Map<number, EventText[]>();
  const unknownApplied = new Map<string, number>();
  for (let revision = first; revision <= last; revision += 1) {
    const ack = history.acknowledged.get(revision);
    const intent = ack?.intent ?? identifyUnknown(history, views, revision, unknownApplied, problems);
    if (intent === undefined) continue;
    const applied = applyIntent(model, intent);
    events.set(revision, applied.events);
    eventsWithPrev.set(revision, applied.eventsWithPrev);
    if (ack !== undefined && ack.deleted.join(',') !== applied.deleted.join(',')) {
      problems.push(
        `revision ${revision} (${intent.id}): the delete reported [${ack.deleted.join(', ')}] deleted, the replayed history says [${applied.deleted.join(', ')}]`,
      );
    }
  }
  for (const [revision] of history.acknowledged)
    if (revision < first || revision > last)
      problems.push(`an acknowledged write made revision ${revision}, outside ${first}..${last}`);
  return { first, last, events, eventsWithPrev, finalState: model, unknownApplied, problems };
}

/** The unknown-outcome write that made `revision`, told by the unique values watchers saw there. */
function identifyUnknown(
  history: WriteHistory,
  views: ReadonlyArray<ReadonlyMap<number, readonly SeenEvent[]>>,
  revision: number,
  applied: Map<string, number>,
  problems: string[],
): WriteIntent | undefined {
  const seen = new Set<string>();
  const deletedKeys = new Set<string>();
  for (const view of views) {
    const events = view.get(revision);
    if (events !== undefined)
      seen.add(
        events
          .filter((e) => e.type === 'PUT')
          .map((e) => `${e.key}=${e.value}`)
          .join(','),
      );
    for (const event of events ?? []) if (event.type === 'DELETE') deletedKeys.add(event.key);
  }
  if (seen.size === 0) {
    problems.push(`revision ${revision}: no acknowledged write made it and no watcher saw it`);
    return undefined;
  }
  for (const puts of seen) {
    // Deletes alone carry no unique value: such a write is told by the range it deleted, once.
    const match = history.unknown.find(
      (u) =>
        u.intent.puts.map(([k, v]) => `${k}=${v}`).join(',') === puts &&
        (puts !== '' || (!applied.has(u.intent.id) && deletesWithin(u.intent, deletedKeys))),
    );
    if (match === undefined) continue;
    const earlier = applied.get(match.intent.id);
    if (earlier !== undefined)
      problems.push(`write ${match.intent.id} (outcome unknown) appears at revisions ${earlier} and ${revision}`);
    applied.set(match.intent.id, revision);
    return match.intent;
  }
  problems.push(`revision ${revision}: watchers saw puts {${[...seen].join(' | ')}}, which no writer attempted`);
  return undefined;
}

/** Whether `keys` (at least one) all lie in the intent's delete range. */
function deletesWithin(intent: WriteIntent, keys: ReadonlySet<string>): boolean {
  const range = intent.deleteRange;
  return range !== undefined && keys.size > 0 && [...keys].every((k) => k >= range.key && k < range.rangeEnd);
}

/** Applies one intent to the model and returns the events it makes, deletes first, in key order. */
function applyIntent(
  model: Map<string, string>,
  intent: WriteIntent,
): { events: EventText[]; eventsWithPrev: EventText[]; deleted: string[] } {
  const events: EventText[] = [];
  const eventsWithPrev: EventText[] = [];
  const range = intent.deleteRange;
  const deleted =
    range === undefined ? [] : [...model.keys()].filter((k) => k >= range.key && k < range.rangeEnd).sort();
  for (const key of deleted) {
    events.push(eventText({ type: 'DELETE', key, value: '', prev: undefined }));
    eventsWithPrev.push(eventText({ type: 'DELETE', key, value: '', prev: model.get(key) ?? '-' }));
    model.delete(key);
  }
  for (const [key, value] of intent.puts) {
    events.push(eventText({ type: 'PUT', key, value, prev: undefined }));
    eventsWithPrev.push(eventText({ type: 'PUT', key, value, prev: model.get(key) ?? '-' }));
    model.set(key, value);
  }
  return { events, eventsWithPrev, deleted };
}

/** One watch on one stream to one member; a logical watcher is a chain of these. */
export interface WatchSegment {
  readonly endpoint: string;
  /** The first revision this segment asked for (for a watch from now: created header + 1). */
  readonly startRevision: number;
  readonly stream: RawWatch;
  readonly watchId: string;
  /** Why the test ended it ('cancelled'), or why it broke; undefined while it runs. */
  endedBecause: string | undefined;
}

/** A watched key range; keys as strings (tests use ASCII keys). */
export interface WatchRange {
  readonly key: string;
  readonly rangeEnd: string;
}

/**
 * A logical watcher: when its stream breaks (member killed) it resumes on another member from the
 * revision after the last one it saw, and it can be cancelled and resumed on purpose. Every
 * response ever received stays in its segments for the checker.
 */
export class ResumingWatcher {
  readonly segments: WatchSegment[] = [];
  readonly problems: string[] = [];
  private resumes = 0;
  /** Set while cancelAndResume runs, so heal() does not take the requested cancel for a server's. */
  private cancelling = false;

  constructor(
    readonly name: string,
    private readonly range: WatchRange,
    readonly prevKv = false,
    /** Resumptions allowed over its life; a long chaos run kills its member many times. */
    private readonly resumesMax = watchResumesMax,
  ) {}

  /** Opens the first segment: from `startRevision`, or from now when it is 'now'. */
  async start(endpoint: string, startRevision: number | 'now'): Promise<void> {
    if (this.segments.length !== 0)
      throw new Error(`${this.name}: start expects a new watcher, it has ${this.segments.length} segments`);
    // grpc-js shares one subchannel per address across clients; after a member restarts, that
    // subchannel may still be in reconnect backoff and fail a new stream at once. Nothing was
    // created then, so trying again loses nothing.
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.open(endpoint, startRevision);
        return;
      } catch (error) {
        if (attempt >= watchStartAttemptsMax || !/UNAVAILABLE/.test((error as Error).message)) throw error;
        await sleep(watchStartRetryPauseMs);
      }
    }
  }

  /** The current (last) segment. */
  get current(): WatchSegment {
    const segment = this.segments.at(-1);
    if (segment === undefined) throw new Error(`${this.name} has not started`);
    return segment;
  }

  /** The highest revision received over all segments, or the start revision - 1 when none yet. */
  reached(): number {
    let highest = (this.segments[0]?.startRevision ?? 1) - 1;
    for (const segment of this.segments)
      for (const event of segmentEvents(segment)) highest = Math.max(highest, event.revision);
    return highest;
  }

  /** The revision a resumed watch must start at: one past the last one received. */
  nextRevision(): number {
    return this.reached() + 1;
  }

  /** Cancels the current watch on purpose and resumes from the next revision through `endpoint`. */
  async cancelAndResume(endpoint: string): Promise<number> {
    const segment = this.current;
    this.cancelling = true;
    try {
      segment.stream.cancel(Number(segment.watchId));
      await waitUntil(
        () => segment.stream.responses.some((r) => r.canceled === true && r.watchId === segment.watchId),
        `${this.name} to be cancelled`,
        watchCreateWaitMsDefault,
      );
      segment.endedBecause = 'cancelled';
      segment.stream.close();
      const from = this.nextRevision();
      await this.open(endpoint, from);
      return from;
    } finally {
      this.cancelling = false;
    }
  }

  /**
   * When the current stream broke or the server cancelled the watch, resumes on one of
   * `endpoints` other than the broken one; returns what it did, '' when nothing was needed.
   */
  async heal(endpoints: readonly string[]): Promise<string> {
    if (this.cancelling) return '';
    const segment = this.current;
    if (segment.endedBecause === 'cancelled' || segment.endedBecause === 'closed') return '';
    // A segment that broke before and could not be resumed then is tried again.
    if (segment.endedBecause === undefined) {
      const serverCancel = segment.stream.responses.find((r) => r.canceled === true && r.watchId === segment.watchId);
      if (!segment.stream.ended && serverCancel === undefined) return '';
      segment.endedBecause =
        serverCancel === undefined ? 'stream broke' : `server cancelled it: ${JSON.stringify(serverCancel)}`;
      if (serverCancel !== undefined)
        this.problems.push(
          `the watch through ${segment.endpoint} from ${segment.startRevision} was cancelled by the server: ${JSON.stringify(serverCancel)}`,
        );
      segment.stream.close();
    }
    const candidates = [...endpoints.filter((e) => e !== segment.endpoint), segment.endpoint];
    for (const endpoint of candidates) {
      if (this.resumes >= this.resumesMax) break;
      this.resumes += 1;
      const from = this.nextRevision();
      try {
        await this.open(endpoint, from);
        return `${this.name}: ${segment.endedBecause} on ${segment.endpoint}, resumed from ${from} on ${endpoint}`;
      } catch (error) {
        this.problems.push(`${resumeFailedPrefix} ${from} on ${endpoint} failed: ${(error as Error).message}`);
      }
    }
    throw new Error(`${this.name}: could not resume after ${this.resumes} attempts: ${this.problems.join('; ')}`);
  }

  /** Every event received, segment by segment, grouped by response. */
  responses(): Array<{ readonly segment: number; readonly events: readonly SeenEvent[] }> {
    return this.segments.flatMap((segment, index) =>
      segmentResponses(segment).map((events) => ({ segment: index, events })),
    );
  }

  /** Events by revision, for identifying unknown writes; the last response wins on a duplicate. */
  view(): Map<number, SeenEvent[]> {
    const byRevision = new Map<number, SeenEvent[]>();
    for (const response of this.responses()) {
      const inResponse = new Map<number, SeenEvent[]>();
      for (const event of response.events)
        inResponse.set(event.revision, [...(inResponse.get(event.revision) ?? []), event]);
      for (const [revision, events] of inResponse) byRevision.set(revision, events);
    }
    return byRevision;
  }

  /** Everything received so far, for checkWatchRecord. */
  record(): WatchRecord {
    return {
      prevKv: this.prevKv,
      problems: this.problems,
      segments: this.segments.map((segment) => ({
        endpoint: segment.endpoint,
        startRevision: segment.startRevision,
        responses: segmentResponses(segment),
      })),
    };
  }

  close(): void {
    for (const segment of this.segments) {
      segment.endedBecause ??= 'closed';
      segment.stream.close();
    }
  }

  private async open(endpoint: string, startRevision: number | 'now'): Promise<void> {
    const stream = new RawWatch(schemelessEndpoint(endpoint));
    let streamError = 'stream ended';
    stream.call.on('error', (error: Error) => (streamError = `stream failed: ${error.message}`));
    const request: Record<string, unknown> = {
      key: Buffer.from(this.range.key),
      rangeEnd: Buffer.from(this.range.rangeEnd),
      prevKv: this.prevKv,
    };
    if (startRevision !== 'now') request.startRevision = String(startRevision);
    stream.create(request);
    try {
      await waitUntil(
        () => stream.ended || stream.responses.some((r) => r.created === true),
        `${this.name} to be created on ${endpoint}`,
        watchCreateWaitMsDefault,
      );
    } catch (error) {
      stream.close();
      throw error;
    }
    const created = stream.responses.find((r) => r.created === true);
    if (created === undefined || created.canceled === true) {
      stream.close();
      throw new Error(
        `watch from ${startRevision} on ${endpoint} was not created: ${created === undefined ? streamError : JSON.stringify(created)}`,
      );
    }
    const start = startRevision === 'now' ? headerRevision(created) + 1 : startRevision;
    this.segments.push({
      endpoint,
      startRevision: start,
      stream,
      watchId: String(created.watchId),
      endedBecause: undefined,
    });
  }
}

/** The header revision of a response. */
export function headerRevision(response: WireMessage | undefined): number {
  return Number((response?.header as { revision?: string } | undefined)?.revision ?? 0);
}

function segmentResponses(segment: WatchSegment): SeenEvent[][] {
  return segment.stream.responses
    .filter((r) => r.watchId === segment.watchId && Array.isArray(r.events) && (r.events as unknown[]).length > 0)
    .map((r) => (r.events as WireEvent[]).map(seenEvent));
}

function segmentEvents(segment: WatchSegment): SeenEvent[] {
  return segmentResponses(segment).flat();
}

interface WireEvent {
  readonly type: number;
  readonly kv: { readonly key: Buffer; readonly value: Buffer; readonly modRevision: string };
  readonly prevKv: { readonly value: Buffer } | null;
}

function seenEvent(event: WireEvent): SeenEvent {
  return {
    type: event.type === 0 ? 'PUT' : 'DELETE',
    key: event.kv.key.toString(),
    value: event.type === 0 ? event.kv.value.toString() : '',
    prev: event.prevKv === null ? '-' : event.prevKv.value.toString(),
    revision: Number(event.kv.modRevision),
  };
}

/**
 * Everything one watcher got wrong over [its start, resolution.last], where every revision has
 * events in the watched range: duplicates and revisions split across responses, order, gaps,
 * revisions outside its range, events unlike the replayed history, inexact resumptions.
 */
export function checkWatcher(watcher: ResumingWatcher, resolution: Resolution): string[] {
  return checkWatchRecord(watcher.record(), resolution);
}

/** What one logical watcher received, segment by segment: ResumingWatcher's, or one a test builds. */
export interface WatchRecord {
  readonly prevKv: boolean;
  /** Problems the watcher met while it ran (failed resumptions, server cancels). */
  readonly problems: readonly string[];
  readonly segments: ReadonlyArray<{
    readonly endpoint: string;
    readonly startRevision: number;
    /** The events of each response with events, in arrival order. */
    readonly responses: ReadonlyArray<readonly SeenEvent[]>;
  }>;
}

/** checkWatcher over a record, so the checks can be fed recorded or hand-made streams. */
export function checkWatchRecord(watcher: WatchRecord, resolution: Resolution): string[] {
  const problems = [...watcher.problems];
  const responses = watcher.segments.flatMap((segment, index) =>
    segment.responses.map((events) => ({ segment: index, events })),
  );
  const first = Math.max(resolution.first, watcher.segments[0]?.startRevision ?? resolution.first);
  const responseOf = new Map<number, number>();
  let previous = 0;
  for (const [index, response] of responses.entries()) {
    const grouped = new Map<number, SeenEvent[]>();
    for (const event of response.events) {
      if (event.revision < previous)
        problems.push(
          `revision ${event.revision} arrived after ${previous} (response #${index}, segment ${response.segment})`,
        );
      if (event.revision !== previous && grouped.has(event.revision))
        problems.push(`revision ${event.revision}'s events are interleaved with others in response #${index}`);
      previous = Math.max(previous, event.revision);
      grouped.set(event.revision, [...(grouped.get(event.revision) ?? []), event]);
    }
    for (const [revision, events] of grouped) {
      const earlier = responseOf.get(revision);
      if (earlier !== undefined)
        problems.push(
          `revision ${revision} delivered in responses #${earlier} and #${index} (duplicate or split; segment ${response.segment})`,
        );
      responseOf.set(revision, index);
      if (revision < first || revision > resolution.last)
        problems.push(
          `revision ${revision} is outside the watched range ${first}..${resolution.last} (segment ${response.segment})`,
        );
      const expected = (watcher.prevKv ? resolution.eventsWithPrev : resolution.events).get(revision);
      const seen = events.map((e) => eventText(watcher.prevKv ? e : { ...e, prev: undefined }));
      if (expected !== undefined && seen.join('\n') !== expected.join('\n'))
        problems.push(`revision ${revision}: saw [${seen.join('; ')}], expected [${expected.join('; ')}]`);
    }
  }
  const missing = [];
  for (let revision = first; revision <= resolution.last; revision += 1)
    if (!responseOf.has(revision)) missing.push(revision);
  if (missing.length > 0)
    problems.push(
      `gap: ${missing.length} revisions in ${first}..${resolution.last} never delivered: ${compactRanges(missing)}`,
    );
  problems.push(...resumptionProblems(watcher, resolution.first));
  if (problems.length <= problemsShownMax) return problems;
  return [...problems.slice(0, problemsShownMax), `... and ${problems.length - problemsShownMax} more`];
}

/** Each resumed segment must start exactly one past what came before and deliver that revision first. */
function resumptionProblems(watcher: WatchRecord, firstRevision: number): string[] {
  const problems: string[] = [];
  let reached = (watcher.segments[0]?.startRevision ?? 1) - 1;
  for (const [index, segment] of watcher.segments.entries()) {
    if (index > 0 && segment.startRevision !== reached + 1)
      problems.push(
        `segment ${index} on ${segment.endpoint} resumed from ${segment.startRevision}, expected ${reached + 1}`,
      );
    const events = segment.responses.flat();
    const firstSeen = events[0]?.revision;
    const due = Math.max(segment.startRevision, firstRevision);
    if (firstSeen !== undefined && firstSeen !== due)
      problems.push(
        `segment ${index} on ${segment.endpoint} asked for ${segment.startRevision} but its first event is at ${firstSeen}, expected ${due}`,
      );
    for (const event of events) reached = Math.max(reached, event.revision);
  }
  return problems;
}

/** [2,3,4,7] as "2..4, 7". */
export function compactRanges(revisions: readonly number[]): string {
  const parts: string[] = [];
  let start = revisions[0];
  for (let i = 1; i <= revisions.length; i += 1) {
    const previous = revisions[i - 1] as number;
    if (revisions[i] === previous + 1) continue;
    parts.push(start === previous ? String(start) : `${start}..${previous}`);
    start = revisions[i];
  }
  return parts.join(', ');
}

type UnaryMethod = (
  request: WireMessage,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: WireMessage) => void,
) => void;

/** A plain KV client for one member: no retries and no failover, so every failure is visible. */
export class KvClient {
  private readonly client: grpc.Client & Record<'Txn' | 'Range' | 'Compact', UnaryMethod>;

  constructor(readonly endpoint: string) {
    const root = grpc.loadPackageDefinition(loadProtos()) as unknown as {
      etcdserverpb: { KV: new (address: string, credentials: grpc.ChannelCredentials) => KvClient['client'] };
    };
    this.client = new root.etcdserverpb.KV(schemelessEndpoint(endpoint), grpc.credentials.createInsecure());
  }

  txn(request: WireMessage, deadlineMs: number): Promise<WireMessage> {
    return this.call('Txn', request, deadlineMs);
  }

  range(request: WireMessage, deadlineMs: number): Promise<WireMessage> {
    return this.call('Range', request, deadlineMs);
  }

  compact(revision: number, deadlineMs: number): Promise<WireMessage> {
    return this.call('Compact', { revision: String(revision) }, deadlineMs);
  }

  close(): void {
    this.client.close();
  }

  private call(method: 'Txn' | 'Range' | 'Compact', request: WireMessage, deadlineMs: number): Promise<WireMessage> {
    return new Promise((resolve, reject) => {
      this.client[method](request, { deadline: Date.now() + deadlineMs }, (error, response) =>
        error !== null || response === undefined ? reject(error ?? new Error('empty response')) : resolve(response),
      );
    });
  }
}
