/**
 * gRPC unary calls over node:http2 without gRPC's libraries, for the one-shot commands: loading
 * @grpc/grpc-js costs more than the whole call. It keeps what etcdctl's client does for such a
 * call: endpoints tried in turn (the next one when a connection fails, again and again until the
 * call's deadline, as a call that waits for a ready connection does), TLS with etcdctl's
 * verification, the call deadline sent as grpc-timeout and kept locally, and HTTP/2 pings while
 * calls are open (--keepalive-time, --keepalive-timeout).
 */
import { connect, constants, type ClientHttp2Session, type SecureClientSessionOptions } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { checkServerIdentity, connect as tlsConnect, type PeerCertificate } from 'node:tls';
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
  private session: ClientHttp2Session | undefined;
  /** The connection being made, ended by close() so a dial never outlives the command. */
  private dialling: ClientHttp2Session | undefined;
  private connecting: Promise<ClientHttp2Session> | undefined;
  private nextEndpoint = 0;
  private closed = false;
  private openCalls = 0;
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
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
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
    this.dialling?.destroy();
    for (const wake of this.wakeOnClose) wake();
  }

  /** The open session, or one to the next endpoint that accepts a connection. */
  private ready(): Promise<ClientHttp2Session> {
    const session = this.session;
    if (session !== undefined && !session.closed && !session.destroyed) return Promise.resolve(session);
    this.connecting ??= this.connectLoop().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  /** Tries the endpoints in turn, backing off after each full pass, until one answers or the channel closes. */
  private async connectLoop(): Promise<ClientHttp2Session> {
    let backoffMs = reconnectBackoffFirstMs;
    while (!this.closed) {
      for (let tried = 0; tried < this.endpoints.length && !this.closed; tried++) {
        const endpoint = this.endpoints[this.nextEndpoint % this.endpoints.length] ?? '';
        try {
          const session = await this.connectTo(endpoint);
          this.adopt(session);
          return session;
        } catch {
          this.nextEndpoint++;
        }
      }
      await this.sleep(backoffMs);
      backoffMs = Math.min(backoffMs * reconnectBackoffMultiplier, reconnectBackoffMaxMs);
    }
    throw new GrpcStatusError(grpcStatus.cancelled, 'Channel has been shut down');
  }

  private sleep(ms: number): Promise<void> {
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
  private adopt(session: ClientHttp2Session): void {
    this.session = session;
    const forget = (): void => {
      if (this.session !== session) return;
      this.session = undefined;
      this.nextEndpoint++;
    };
    session.on('close', forget);
    session.on('goaway', forget);
    session.on('error', forget);
    if (this.closed) session.close();
    if (this.options.keepAliveTimeMs !== undefined && this.keepAlive === undefined) {
      this.keepAlive = setInterval(() => this.ping(), this.options.keepAliveTimeMs);
      this.keepAlive.unref();
    }
  }

  /** A keepalive ping while calls are open; no answer within the timeout ends the connection. */
  private ping(): void {
    const session = this.session;
    if (session === undefined || this.openCalls === 0) return;
    const timeout = setTimeout(() => session.destroy(), this.options.keepAliveTimeoutMs ?? 20_000);
    timeout.unref();
    session.ping((error) => {
      clearTimeout(timeout);
      if (error !== null) session.destroy();
    });
  }

  private connectTo(endpoint: string): Promise<ClientHttp2Session> {
    const tls = this.options.tls;
    const trimmed = endpoint.trim();
    const unixPath = /^unixs?:\/\//.test(trimmed) ? trimmed.replace(/^unixs?:\/\//, '') : undefined;
    const hostPort = trimmed.replace(/^(https?|unixs?):\/\//, '');
    const tlsOptions = tls === undefined ? undefined : this.tlsOptions(tls);
    let options: SecureClientSessionOptions = {};
    if (unixPath !== undefined)
      options = {
        createConnection: () =>
          tlsOptions === undefined
            ? netConnect(unixPath)
            : tlsConnect({ ...tlsOptions, path: unixPath, ALPNProtocols: ['h2'] }),
      };
    else if (tlsOptions !== undefined) options = tlsOptions;
    const authority = unixPath === undefined ? hostPort : 'localhost';
    const session = connect(`${tls === undefined ? 'http' : 'https'}://${authority}`, options);
    this.dialling = session;
    return new Promise((resolve, reject) => {
      const fail = (error?: Error): void => {
        this.dialling = undefined;
        session.destroy();
        reject(error ?? new Error('connection closed'));
      };
      session.once('error', fail);
      session.once('close', fail);
      session.once('connect', () => {
        this.dialling = undefined;
        session.off('error', fail);
        session.off('close', fail);
        resolve(session);
      });
    });
  }

  /** clientv3's verification: the CA given (or the system's), the server named as the first endpoint's host. */
  private tlsOptions(tls: ClientTls): SecureClientSessionOptions {
    const firstHost = endpointHost(this.endpoints[0] ?? '');
    return {
      ...(tls.ca === undefined ? {} : { ca: tls.ca }),
      ...(tls.cert === undefined ? {} : { cert: tls.cert }),
      ...(tls.key === undefined ? {} : { key: tls.key }),
      rejectUnauthorized: !tls.skipVerify,
      checkServerIdentity: (_host: string, cert: PeerCertificate) =>
        tls.skipVerify ? undefined : checkServerIdentity(firstHost, cert),
    };
  }

  private send(
    session: ClientHttp2Session,
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
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...metadata,
    };
    if (deadline !== undefined) headers['grpc-timeout'] = `${Math.max(1, deadline - Date.now())}m`;
    const stream = session.request(headers);
    this.openCalls++;
    return new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let status: number | undefined;
      let details = '';
      const readStatus = (fields: Record<string, unknown>): void => {
        if (fields['grpc-status'] === undefined) return;
        status = Number(fields['grpc-status']);
        details = decodeGrpcMessage(String(fields['grpc-message'] ?? ''));
      };
      const onStop = (): void => {
        stream.close(constants.NGHTTP2_CANCEL);
        reject(stop.reason as Error);
      };
      stop.addEventListener('abort', onStop, { once: true });
      stream.on('response', (responseHeaders) => {
        const httpStatus = Number(responseHeaders[':status']);
        if (httpStatus !== 200) {
          status = grpcStatus.unknown;
          details = `Received HTTP status code ${httpStatus}`;
        }
        readStatus(responseHeaders);
      });
      stream.on('trailers', readStatus);
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', () => undefined);
      stream.on('close', () => {
        this.openCalls--;
        stop.removeEventListener('abort', onStop);
        if (stop.aborted) return;
        if (status === undefined)
          return reject(
            new GrpcStatusError(
              grpcStatus.unavailable,
              `Stream closed with error code ${stream.rstCode ?? constants.NGHTTP2_INTERNAL_ERROR}`,
            ),
          );
        if (status !== grpcStatus.ok) return reject(new GrpcStatusError(status, details));
        const data = Buffer.concat(chunks);
        const length = data.length >= grpcFrameHeaderBytes ? data.readUInt32BE(1) : -1;
        if (length < 0 || data.length !== grpcFrameHeaderBytes + length || data[0] !== 0)
          return reject(new GrpcStatusError(grpcStatus.internal, 'Failed to parse server response'));
        resolve(data.subarray(grpcFrameHeaderBytes));
      });
      stream.end(body);
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
