/**
 * What the client port's HTTP/2 server announces and enforces: its SETTINGS (stream window,
 * header list limit, concurrent streams) and the options etcd's --max-concurrent-streams and
 * --grpc-keepalive-* flags come to, as grpc-go's server options. The connection that acts on them
 * is server.ts.
 */
import { Setting } from '../../../src/http2/frames.js';
import {
  clientPrefaceMsMax,
  grpcKeepaliveIntervalMsDefault,
  grpcKeepaliveMinTimeMsDefault,
  grpcKeepalivePolicyMinTimeMsDefault,
  grpcKeepaliveTimeoutMsDefault,
  headerListBytesMax,
  maxConcurrentStreamsDefault,
  unfinishedStreamIdleMsMax,
} from '../../../src/lib/limits.js';
import type { MemberConfig } from '../../../src/config/config.js';

/** What we let a client have in flight per stream before it waits for a WINDOW_UPDATE. */
export const streamReceiveWindowBytes = 1 << 20;
/** And on the whole connection. */
export const connectionReceiveWindowBytes = 16 << 20;

/** What etcd's --max-concurrent-streams and --grpc-keepalive-* flags make grpc-go's server do. */
export interface Http2ServerOptions {
  /**
   * Streams a client may have open at once; a HEADERS frame opening one more is refused with
   * RST_STREAM REFUSED_STREAM. Announced in SETTINGS_MAX_CONCURRENT_STREAMS; 0 means no limit
   * and no announcement, as in grpc-go.
   */
  maxConcurrentStreams: number;
  /** A client with streams open that PINGs sooner than this after its last PING earns a strike. */
  keepaliveMinTimeMs: number;
  /** After this long without a frame from the client, the server PINGs it. */
  keepaliveIntervalMs: number;
  /** And closes the connection when nothing arrives this long after that PING. */
  keepaliveTimeoutMs: number;
  /** A connection whose SETTINGS (after the preface) has not arrived this long after it started is closed. */
  prefaceMs: number;
  /** A stream whose request has not all arrived and that received nothing this long is reset. */
  unfinishedStreamIdleMs: number;
}

/** What etcd's defaults come to. */
export const etcdHttp2ServerOptions: Readonly<Http2ServerOptions> = {
  maxConcurrentStreams: maxConcurrentStreamsDefault,
  keepaliveMinTimeMs: grpcKeepaliveMinTimeMsDefault,
  keepaliveIntervalMs: grpcKeepaliveIntervalMsDefault,
  keepaliveTimeoutMs: grpcKeepaliveTimeoutMsDefault,
  prefaceMs: clientPrefaceMsMax,
  unfinishedStreamIdleMs: unfinishedStreamIdleMsMax,
};

type KeepaliveFlags = Pick<
  MemberConfig,
  'maxConcurrentStreams' | 'grpcKeepaliveMinTimeMs' | 'grpcKeepaliveIntervalMs' | 'grpcKeepaliveTimeoutMs'
>;

/**
 * The server options etcd's flags come to. etcd passes grpc-go an enforcement policy only for a
 * --grpc-keepalive-min-time above 0, and keepalive parameters only when both the interval and
 * the timeout are above 0; without them grpc-go uses its own defaults, so 0 disables nothing.
 */
export function http2ServerOptions(flags: KeepaliveFlags): Http2ServerOptions {
  const pingsServer = flags.grpcKeepaliveIntervalMs > 0 && flags.grpcKeepaliveTimeoutMs > 0;
  return {
    maxConcurrentStreams: flags.maxConcurrentStreams,
    keepaliveMinTimeMs:
      flags.grpcKeepaliveMinTimeMs > 0 ? flags.grpcKeepaliveMinTimeMs : grpcKeepalivePolicyMinTimeMsDefault,
    keepaliveIntervalMs: pingsServer ? flags.grpcKeepaliveIntervalMs : grpcKeepaliveIntervalMsDefault,
    keepaliveTimeoutMs: pingsServer ? flags.grpcKeepaliveTimeoutMs : grpcKeepaliveTimeoutMsDefault,
    prefaceMs: clientPrefaceMsMax,
    unfinishedStreamIdleMs: unfinishedStreamIdleMsMax,
  };
}

/** The server's first SETTINGS: grpc-go's, with our stream window and header list limit. */
export function serverSettings(maxConcurrentStreams: number): Buffer {
  const settings: Array<[number, number]> = [
    [Setting.initialWindowSize, streamReceiveWindowBytes],
    [Setting.maxHeaderListSize, headerListBytesMax],
  ];
  if (maxConcurrentStreams > 0) settings.push([Setting.maxConcurrentStreams, maxConcurrentStreams]);
  const payload = Buffer.alloc(6 * settings.length);
  settings.forEach(([id, value], index) => {
    payload.writeUInt16BE(id, 6 * index);
    payload.writeUInt32BE(value, 6 * index + 2);
  });
  return payload;
}
