/**
 * The waiting half of etcd's recipes, on top of the host's watch: wait for a key's deletion, wait
 * until every key ahead of a waiter is gone, and follow a span change by change.
 */
import type { KeyValue, ResponseHeader } from '../api/types.js';
import { AssertionError, assert } from '../lib/assert.js';
import { recipeErrors } from '../api/errors.js';
import type { ConcurrencyHost, ConcurrencyWatchBatch, ConcurrencyWatchEvent, ConcurrencyWatchRequest } from './host.js';
import { getLastCreatedUpTo } from './keys.js';

const emptyBytes = new Uint8Array(0);

export interface WatchedChange {
  header: ResponseHeader;
  event: ConcurrencyWatchEvent;
}

/** An AbortController that also aborts when `parent` does; `release` drops the link. */
function linkedController(parent: AbortSignal): { controller: AbortController; release: () => void } {
  const controller = new AbortController();
  const abort = (): void => controller.abort();
  parent.addEventListener('abort', abort, { once: true });
  return { controller, release: () => parent.removeEventListener('abort', abort) };
}

/**
 * The host's watch as an async sequence of single changes. Leaving the loop early unregisters the
 * watch; an abort of `signal` ends it with "context canceled"; a failed watch throws its error.
 */
export async function* watchChanges(
  host: ConcurrencyHost,
  request: ConcurrencyWatchRequest,
  signal: AbortSignal,
): AsyncGenerator<WatchedChange, never, undefined> {
  if (signal.aborted) throw recipeErrors.canceled();
  const { controller, release } = linkedController(signal);
  // Batches wait here until the consumer takes them; a slow consumer only costs memory.
  const queue: ConcurrencyWatchBatch[] = [];
  let wake: (() => void) | undefined;
  let ended: { failure: unknown } | undefined;
  const onBatch = (batch: ConcurrencyWatchBatch): void => {
    queue.push(batch);
    wake?.();
  };
  const finish = (failure: unknown): void => {
    ended = { failure };
    wake?.();
  };
  const watching = host.watch(request, onBatch, controller.signal).then(() => finish(undefined), finish);
  try {
    for (;;) {
      const batch = queue.shift();
      if (batch !== undefined) {
        for (const event of batch.events) yield { header: batch.header, event };
        continue;
      }
      if (ended !== undefined) throw ended.failure ?? recipeErrors.canceled();
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    controller.abort();
    release();
    await watching;
  }
}

/** Resolves once `key` is deleted at `fromRevision` or later (a key alive then must be deleted after). */
export async function waitDelete(
  host: ConcurrencyHost,
  key: Uint8Array,
  fromRevision: number,
  signal: AbortSignal,
): Promise<void> {
  for await (const { event } of watchChanges(
    host,
    { key, rangeEnd: emptyBytes, startRevision: fromRevision },
    signal,
  )) {
    if (event.type === 'delete') return;
  }
  return endless();
}

/**
 * Waits until no key under `prefix` has a create revision at or below `maxCreateRevision`, by
 * waiting on the newest such key at a time (so each waiter wakes only for its predecessor), and
 * answers with the header of the read that found none.
 */
export async function waitDeletes(
  host: ConcurrencyHost,
  prefix: Uint8Array,
  maxCreateRevision: number,
  signal: AbortSignal,
): Promise<ResponseHeader> {
  let previousCreateRevision = Infinity;
  for (;;) {
    if (signal.aborted) throw recipeErrors.canceled();
    const { header, result } = await host.kv.range(getLastCreatedUpTo(prefix, maxCreateRevision));
    const ahead = result.kvs[0];
    if (ahead === undefined) return header;
    // A deleted key that comes back has a new create revision beyond the bound, so this shrinks.
    assert(
      ahead.createRevision < previousCreateRevision,
      () => `waiting on create revision ${ahead.createRevision} after ${previousCreateRevision}`,
    );
    previousCreateRevision = ahead.createRevision;
    await waitDelete(host, ahead.key, header.revision, signal);
  }
}

/** The first key put in the span from its start revision on, with a header at that put's revision. */
export async function firstPut(
  host: ConcurrencyHost,
  request: ConcurrencyWatchRequest,
  signal: AbortSignal,
): Promise<{ header: ResponseHeader; kv: KeyValue }> {
  for await (const { header, event } of watchChanges(host, request, signal)) {
    // etcd reports the put's own revision, as a batch may hold later revisions too.
    if (event.type === 'put') return { header: { ...header, revision: event.kv.modRevision }, kv: event.kv };
  }
  return endless();
}

/** watchChanges() only ends by throwing; reaching the end of its loop breaks that promise. */
function endless(): never {
  throw new AssertionError('a watch sequence ended without an error');
}
