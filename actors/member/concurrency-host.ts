/**
 * The member as etcd's lock and election recipes see it: its linearizable KV, lease grants, and
 * watches on its WatchableStore that deliver every change of a span in order.
 */
import { errors } from '../../src/api/errors.js';
import type { ConcurrencyHost, ConcurrencyWatchBatch, ConcurrencyWatchRequest } from '../../src/concurrency/host.js';
import type { Member } from './member.js';
import type { KvService } from '../../src/api/types.js';
import type { CallerCredentials } from '../../src/auth/types.js';

/** Watch IDs of recipe watchers live apart from client watch streams (the store does not read them). */
const recipeWatchIdBase = -1_000_000;
let nextRecipeWatchId = recipeWatchIdBase;

/** Builds the ConcurrencyHost the Lock and Election services run on. */
export function concurrencyHostFor(member: Member): ConcurrencyHost {
  const host: ConcurrencyHost = {
    kv: member,
    grantLease: async (ttlSeconds) => (await member.grant(0n, ttlSeconds)).id,
    watch: (request, onBatch, signal) => watchSpan(member, request, onBatch, signal),
    // With auth disabled a call's token still goes with its KV requests, which refuse one nobody issued.
    forCaller: (credentials) =>
      member.auth.enabled || credentials.token !== undefined ? { ...host, kv: kvAs(member, credentials) } : host,
  };
  return host;
}

/** The member's KV with every request made by the holder of `credentials`. */
function kvAs(member: Member, credentials: CallerCredentials): KvService {
  return {
    range: (request) => member.range(request, credentials),
    put: (request) => member.put(request, credentials),
    deleteRange: (request) => member.deleteRange(request, credentials),
    txn: (request) => member.txn(request, credentials),
    compact: (request) => member.compact(request, credentials),
  };
}

function watchSpan(
  member: Member,
  request: ConcurrencyWatchRequest,
  onBatch: (batch: ConcurrencyWatchBatch) => void,
  signal: AbortSignal,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const header = member.header();
    const watcher = member.watchable.watch(
      {
        watchId: nextRecipeWatchId--,
        key: request.key,
        rangeEnd: request.rangeEnd,
        startRevision: request.startRevision,
      },
      (response) => {
        if (response.compactRevision !== 0) {
          finish(errors.compacted());
          return true;
        }
        if (response.events.length > 0) {
          onBatch({
            header: { ...header, revision: response.revision },
            events: response.events.map((event) => ({ type: event.type, kv: event.kv })),
          });
        }
        return true;
      },
    );
    const finish = (error?: Error) => {
      signal.removeEventListener('abort', onAbort);
      member.watchable.cancel(watcher);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onAbort = () => finish();
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
