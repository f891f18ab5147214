/**
 * gRPC unary calls without gRPC's libraries or node:http2, for the one-shot commands: loading
 * @grpc/grpc-js (or node:http2 with the TLS and crypto modules it pulls in) costs more than the
 * whole call, so a plain-text call loads only node:net and http2-client.ts, and node:tls comes in
 * only for an https endpoint. It keeps what etcdctl's client does for such a
 * call: endpoints tried in turn (the next one when a connection fails, again and again until the
 * call's deadline, as a call that waits for a ready connection does), TLS with etcdctl's
 * verification, the call deadline sent as grpc-timeout and kept locally, and HTTP/2 pings while
 * calls are open (--keepalive-time, --keepalive-timeout).
 */
import { connect as netConnect, type Socket } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import { Http2ErrorCode } from '../src/http2/frames.js';
import { netLookup } from './host-lookup.js';
import { Http2ClientConnection } from './http2-client.js';
import { nodeTls } from './lazy-modules.js';
import type { ClientTls } from './security.js';

/** gRPC status codes this module produces itself. */
export const grpcStatus = {
  ok: 0,
  cancelled: 1,
  unknown: 2,
  deadlineExceeded: 4,
  internal: 13,
  unavailable: 14,
} as const;

/** A call that ended with a non-OK gRPC status: grpc-js's ServiceError fields that the texts use. */
export class GrpcStatusError extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
  ) {
    super(details);
    this.name = 'GrpcStatusError';
  }
}

export interface UnaryChannelOptions {
  tls?: ClientTls;
  keepAliveTimeMs?: number;
  keepAliveTimeoutMs?: number;
}

/** grpc's connection backoff: the first retry after 1 s, then 1.6 times longer, at most 120 s. */
const reconnectBackoffFirstMs = 1_000;
const reconnectBackoffMaxMs = 120_000;
const reconnectBackoffMultiplier = 1.6;
/** gRPC's message header: a compressed flag and a 4-byte big-endian length. */
export const grpcFrameHeaderBytes = 5;

/** grpc's Happy Eyeballs delay: the next endpoint is dialled too when one has not answered within it. */
const connectionAttemptDelayMs = 250;

/** The host of an endpoint without scheme and port, as clientv3 names the server it verifies. */
export function endpointHost(endpoint: string): string {
  const host = endpoint.trim().replace(/^[a-z]+:\/\//, '');
  return host.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
}

/** gRPC percent-encodes grpc-message; a malformed escape is kept as it came. */
function decodeGrpcMessage(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** One HTTP/2 connection at a time to the first of `endpoints` that answers. */
export class UnaryChannel {
  private session: Http2ClientConnection | undefined;
  /** The connections being made, ended by close() (or by another endpoint answering first) so a dial never outlives the command. */
  private readonly dialling = new Set<Socket>();
  /** The :authority of requests on each connection made. */
  private readonly authorities = new WeakMap<Http2ClientConnection, string>();
  private connecting: Promise<Http2ClientConnection> | undefined;
  private nextEndpoint = 0;
  private closed = false;
  private keepAlive: NodeJS.Timeout | undefined;
  private readonly wakeOnClose = new Set<() => void>();

  constructor(
    private readonly endpoints: readonly string[],
    private readonly options: UnaryChannelOptions = {},
  ) {}

  /**
   * Sends one request (already framed: `body` starts with grpcFrameHeaderBytes bytes this fills
   * in) and resolves with the response message's bytes; fails with GrpcStatusError.
   */
  async call(
    path: string,
    body: Uint8Array,
    metadata: Readonly<Record<string, string>>,
    timeoutMs: number | undefined,
    signal?: AbortSignal,
  ): Promise<Buffer> {
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    const stop = new AbortController();
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(
            () => stop.abort(new GrpcStatusError(grpcStatus.deadlineExceeded, 'Deadline exceeded')),
            timeoutMs,
          );
    const onAbort = (): void => stop.abort(new GrpcStatusError(grpcStatus.cancelled, 'Cancelled on client'));
    // A signal that aborted before the call started cancels it at once, as a later abort would.
    if (signal?.aborted === true) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    try {
      // A call cancelled before it started dials nothing.
      if (stop.signal.aborted) throw stop.signal.reason as Error;
      const session = await abortable(this.ready(), stop.signal);
      return await this.send(session, path, body, metadata, deadline, stop.signal);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  close(): void {
    this.closed = true;
    clearInterval(this.keepAlive);
    this.session?.close();
    for (const socket of this.dialling) socket.destroy();
    for (const wake of this.wakeOnClose) wake();
  }

  /** The open session, or one to the next endpoint that accepts a connection. */
  private ready(): Promise<Http2ClientConnection> {
    const session = this.session;
    if (session !== undefined && session.usable) return Promise.resolve(session);
    this.connecting ??= this.connectLoop().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  /** Passes over the endpoints, backing off after each pass that found none, until one answers or the channel closes. */
  private async connectLoop(): Promise<Http2ClientConnection> {
    let backoffMs = reconnectBackoffFirstMs;
    while (!this.closed) {
      const session = await this.connectPass();
      if (session !== undefined) {
        this.adopt(session);
        return session;
      }
      await this.sleep(backoffMs);
      backoffMs = Math.min(backoffMs * reconnectBackoffMultiplier, reconnectBackoffMaxMs);
    }
    throw new GrpcStatusError(grpcStatus.cancelled, 'Channel has been shut down');
  }

  /**
   * One pass over the endpoints from the next one. Each is dialled once the one before has failed
   * or has not answered within connectionAttemptDelayMs, so an address that swallows packets does
   * not hold the others back (clientv3 dials every endpoint); the first to answer is used and the
   * other dials are ended. Undefined when none answered.
   */
  private connectPass(): Promise<Http2ClientConnection | undefined> {
    const order = this.endpoints.map((_, index) => (this.nextEndpoint + index) % this.endpoints.length);
    return new Promise((resolve) => {
      let started = 0;
      let failed = 0;
      let won = false;
      let timer: NodeJS.Timeout | undefined;
      const startNext = (): void => {
        clearTimeout(timer);
        const index = order[started];
        if (won || this.closed || index === undefined) return;
        started++;
        timer = setTimeout(startNext, connectionAttemptDelayMs);
        this.connectTo(this.endpoints[index] ?? '').then(
          (session) => {
            if (won || this.closed) {
              session.close();
              return;
            }
            won = true;
            clearTimeout(timer);
            for (const socket of this.dialling) socket.destroy();
            this.nextEndpoint = index;
            resolve(session);
          },
          () => {
            failed++;
            if (won) return;
            if (failed === order.length || this.closed) {
              clearTimeout(timer);
              resolve(undefined);
            } else if (failed === started) startNext();
          },
        );
      };
      startNext();
    });
  }

  private sleep(ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.wakeOnClose.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakeOnClose.add(wake);
    });
  }

  /** Keeps the session until it ends; then the next call connects again, starting with the next endpoint. */
  private adopt(session: Http2ClientConnection): void {
    this.session = session;
    const forget = (): void => {
      if (this.session !== session) return;
      this.session = undefined;
      this.nextEndpoint++;
    };
    session.whenEnded(forget);
    if (this.closed) session.close();
    if (this.options.keepAliveTimeMs !== undefined && this.keepAlive === undefined) {
      this.keepAlive = setInterval(() => this.ping(), this.options.keepAliveTimeMs);
      this.keepAlive.unref();
    }
  }

  /** A keepalive ping while calls are open; no answer within the timeout ends the connection. */
  private ping(): void {
    const session = this.session;
    if (session === undefined || session.openStreams === 0) return;
    const timeout = setTimeout(() => session.close(), this.options.keepAliveTimeoutMs ?? 20_000);
    timeout.unref();
    session.ping(() => clearTimeout(timeout));
  }

  private async connectTo(endpoint: string): Promise<Http2ClientConnection> {
    const tls = this.options.tls;
    const trimmed = endpoint.trim();
    const unixPath = /^unixs?:\/\//.test(trimmed) ? trimmed.replace(/^unixs?:\/\//, '') : undefined;
    const hostPort = /^(.*?)(?::(\d+))?$/.exec(trimmed.replace(/^(https?|unixs?):\/\//, ''));
    const host = (hostPort?.[1] ?? '').replace(/^\[(.*)\]$/, '$1');
    const port = Number(hostPort?.[2] ?? (tls === undefined ? 80 : 443));
    // Host names are looked up as Go's resolver does, not through getaddrinfo (see host-lookup.ts).
    const where = unixPath === undefined ? { host, port, lookup: netLookup } : { path: unixPath };
    let socket: Socket;
    if (tls === undefined) socket = netConnect(where);
    else {
      const tlsModule = nodeTls();
      socket = tlsModule.connect({ ...where, ...this.tlsOptions(tls, tlsModule), ALPNProtocols: ['h2'] });
    }
    // A request is small writes after the preface: with Nagle's algorithm on, each would wait for
    // the server's delayed ACK (about 40 ms).
    socket.setNoDelay(true);
    this.dialling.add(socket);
    await new Promise<void>((resolve, reject) => {
      const fail = (error?: Error): void => {
        socket.destroy();
        reject(error ?? new Error('connection closed'));
      };
      const closedEarly = (): void => fail();
      socket.once('error', fail);
      socket.once('close', closedEarly);
      socket.once(tls === undefined ? 'connect' : 'secureConnect', () => {
        socket.off('error', fail);
        socket.off('close', closedEarly);
        resolve();
      });
    }).catch((error: unknown) => {
      this.dialling.delete(socket);
      throw error;
    });
    const authority = unixPath === undefined ? `${host.includes(':') ? `[${host}]` : host}:${port}` : 'localhost';
    const connection = new Http2ClientConnection(socket);
    try {
      await connection.ready;
    } finally {
      this.dialling.delete(socket);
    }
    this.authorities.set(connection, authority);
    return connection;
  }

  /** clientv3's verification: the CA given (or the system's), the server named as the first endpoint's host or the discovery domain. */
  private tlsOptions(tls: ClientTls, tlsModule: typeof import('node:tls')): import('node:tls').ConnectionOptions {
    // --discovery-srv (without --insecure-discovery) names the server by the domain instead.
    const firstHost = tls.serverName ?? endpointHost(this.endpoints[0] ?? '');
    return {
      ...(tls.ca === undefined ? {} : { ca: tls.ca }),
      ...(tls.cert === undefined ? {} : { cert: tls.cert }),
      ...(tls.key === undefined ? {} : { key: tls.key }),
      rejectUnauthorized: !tls.skipVerify,
      checkServerIdentity: (_host: string, cert: PeerCertificate) =>
        tls.skipVerify ? undefined : tlsModule.checkServerIdentity(firstHost, cert),
    };
  }

  private send(
    session: Http2ClientConnection,
    path: string,
    body: Uint8Array,
    metadata: Readonly<Record<string, string>>,
    deadline: number | undefined,
    stop: AbortSignal,
  ): Promise<Buffer> {
    const messageBytes = body.length - grpcFrameHeaderBytes;
    body[0] = 0;
    new DataView(body.buffer, body.byteOffset, body.byteLength).setUint32(1, messageBytes);
    const headers: Record<string, string> = {
      ':method': 'POST',
      ':scheme': this.options.tls === undefined ? 'http' : 'https',
      ':path': path,
      ':authority': this.authorities.get(session) ?? 'localhost',
      'content-type': 'application/grpc',
      te: 'trailers',
    };
    if (deadline !== undefined) headers['grpc-timeout'] = `${Math.max(1, Math.ceil(deadline - Date.now()))}m`;
    Object.assign(headers, metadata);
    return new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let status: number | undefined;
      let details = '';
      let sawHeaders = false;
      const readStatus = (fields: ReadonlyMap<string, string>): void => {
        if (!sawHeaders) {
          sawHeaders = true;
          const httpStatus = Number(fields.get(':status'));
          if (httpStatus !== 200) {
            status = grpcStatus.unknown;
            details = `Received HTTP status code ${httpStatus}`;
          }
        }
        const code = fields.get('grpc-status');
        if (code === undefined) return;
        status = Number(code);
        details = decodeGrpcMessage(fields.get('grpc-message') ?? '');
      };
      let streamId = 0;
      const onStop = (): void => {
        reject(stop.reason as Error);
        session.cancel(streamId);
      };
      const closed = (resetCode: number | undefined): void => {
        stop.removeEventListener('abort', onStop);
        if (stop.aborted) return;
        if (status === undefined)
          return reject(
            new GrpcStatusError(
              grpcStatus.unavailable,
              `Stream closed with error code ${resetCode ?? Http2ErrorCode.internalError}`,
            ),
          );
        if (status !== grpcStatus.ok) return reject(new GrpcStatusError(status, details));
        const data = Buffer.concat(chunks);
        const length = data.length >= grpcFrameHeaderBytes ? data.readUInt32BE(1) : -1;
        if (length < 0 || data.length !== grpcFrameHeaderBytes + length || data[0] !== 0)
          return reject(new GrpcStatusError(grpcStatus.internal, 'Failed to parse server response'));
        resolve(data.subarray(grpcFrameHeaderBytes));
      };
      streamId = session.request(headers, body, {
        headers: readStatus,
        data: (chunk) => chunks.push(chunk),
        close: closed,
      });
      stop.addEventListener('abort', onStop, { once: true });
    });
  }
}

/** Settles as `promise` does, or rejects with the abort reason once `signal` aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error as Error);
      },
    );
  });
}
