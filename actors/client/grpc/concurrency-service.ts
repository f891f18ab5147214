/**
 * The Lock and Election gRPC services: wire messages decoded with src/concurrency/lock-election-wire.ts, the
 * recipes of src/concurrency run against a ConcurrencyHost (the member), and failures answered
 * the way etcd's recipe servers answer them (code UNKNOWN, etcd's text).
 */
import type { WireMessage } from '../../../src/api/proto-wire.js';
import { EtcdError, GrpcCode } from '../../../src/api/errors.js';
import {
  campaignRequestFromWire,
  campaignResponseToWire,
  headerOnlyResponseToWire,
  leaderNameFromWire,
  leaderResponseToWire,
  lockRequestFromWire,
  lockResponseToWire,
  proclaimRequestFromWire,
  resignLeaderFromWire,
  unlockKeyFromWire,
} from '../../../src/concurrency/lock-election-wire.js';
import { asRecipeError } from '../../../src/concurrency/concurrency-errors.js';
import { campaign, currentLeader, observe, proclaim, resign } from '../../../src/concurrency/election.js';
import type { ConcurrencyHost } from '../../../src/concurrency/host.js';
import { lock, unlock } from '../../../src/concurrency/lock.js';
import type { GrpcHandlers, UnaryContext, UnaryHandler } from './router.js';
import { drained, type GrpcStreamCall } from './calls.js';

export type { ConcurrencyHost } from '../../../src/concurrency/host.js';

/**
 * A unary call's context; `signal`, when the gRPC server provides it, aborts once the client
 * cancels or its deadline passes, so a waiting Lock or Campaign withdraws its key as etcd's does.
 */
export type CancellableContext = UnaryContext & { signal?: AbortSignal };

const neverAborted = new AbortController().signal;

/** Runs a recipe with etcd's error mapping, on the host as the call's caller sees it. */
function recipe(
  base: ConcurrencyHost,
  run: (host: ConcurrencyHost, request: WireMessage, signal: AbortSignal) => Promise<WireMessage>,
): UnaryHandler {
  return async (request, context: CancellableContext) => {
    try {
      const host = base.forCaller?.(context) ?? base;
      return await run(host, request, context.signal ?? neverAborted);
    } catch (error) {
      throw asRecipeError(error);
    }
  };
}

/** Handlers for every v3lockpb.Lock and v3electionpb.Election method, to pass to createGrpcServer. */
export function concurrencyHandlers(base: ConcurrencyHost): GrpcHandlers {
  return {
    'v3lockpb.Lock/Lock': recipe(base, async (host, wire, signal) => {
      const { header, key } = await lock(host, lockRequestFromWire(wire), signal);
      return lockResponseToWire(header, key);
    }),
    'v3lockpb.Lock/Unlock': recipe(base, async (host, wire) =>
      headerOnlyResponseToWire((await unlock(host, unlockKeyFromWire(wire))).header),
    ),
    'v3electionpb.Election/Campaign': recipe(base, async (host, wire, signal) => {
      const { header, leader } = await campaign(host, campaignRequestFromWire(wire), signal);
      return campaignResponseToWire(header, leader);
    }),
    'v3electionpb.Election/Proclaim': recipe(base, async (host, wire) => {
      const { leader, value } = proclaimRequestFromWire(wire);
      return headerOnlyResponseToWire((await proclaim(host, leader, value)).header);
    }),
    'v3electionpb.Election/Leader': recipe(base, async (host, wire) =>
      leaderResponseToWire(await currentLeader(host, leaderNameFromWire(wire))),
    ),
    'v3electionpb.Election/Resign': recipe(base, async (host, wire) =>
      headerOnlyResponseToWire((await resign(host, resignLeaderFromWire(wire))).header),
    ),
    'v3electionpb.Election/Observe': (call: GrpcStreamCall) => {
      void observeStream(base.forCaller?.(call) ?? base, call);
    },
  };
}

/**
 * Streams leader changes until the client goes away. etcd ends the stream with status OK when
 * its observer fails (a compacted watch, a failed read), and so do we; the client observes anew.
 */
async function observeStream(host: ConcurrencyHost, call: GrpcStreamCall): Promise<void> {
  const controller = new AbortController();
  call.once('cancelled', () => controller.abort());
  try {
    for await (const state of observe(host, leaderNameFromWire(call.request), controller.signal)) {
      if (!call.write(leaderResponseToWire(state))) await drained(call, controller.signal);
    }
  } catch (error) {
    // A broken invariant still reaches the client, as UNKNOWN, rather than ending the process.
    if (!(error instanceof EtcdError) && !call.cancelled) {
      call.emit('error', { code: GrpcCode.unknown, details: error instanceof Error ? error.message : String(error) });
      return;
    }
  } finally {
    controller.abort();
  }
  if (!call.cancelled) call.end();
}
