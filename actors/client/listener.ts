/**
 * The client port: like etcd's cmux, one TCP listener carries both gRPC (HTTP/2 with prior
 * knowledge, as etcdctl and clientv3 speak it) and HTTP/1.1 (/health, /version, /metrics, /dashboard
 * and the JSON gateway). Each connection's first bytes decide where it goes.
 */
import * as http from 'node:http';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { versionBody } from '../../src/api/version.js';
import type { GrpcRoutes } from './grpc/calls.js';
import { serveGrpcConnection } from './http2/server.js';
import type { Http2ServerOptions } from './http2/server-options.js';
import { http2Preface } from '../../src/http2/frames.js';
import { clientConnectionsWaitingMax, clientHandshakeMsMax, clientPrefaceMsMax } from '../../src/lib/limits.js';
import { tlsErrorTexts } from '../../src/config/tls-files.js';
import { certificateRefusal, handshakeRefusal, type TlsRefusal } from '../shared/tls-refusal.js';

export interface HealthReport {
  health: boolean;
  /** Why the member is unhealthy; empty when healthy. */
  reason: string;
}

export interface HttpHandlers {
  /** Answers GET /health; `excludedAlarms` are the alarm names of ?exclude= (etcd's), to be ignored. */
  health: (excludedAlarms: ReadonlySet<string>) => HealthReport | Promise<HealthReport>;
  /** The cluster version /version reports ("3.4.0"), undefined while none is decided; not_decided when absent. */
  clusterVersion?: () => string | undefined;
  /**
   * Further routes: an exact path, or a prefix when the key ends in '/' (e.g. '/v3/').
   * Checked before the built-in /health and /version.
   */
  routes?: Record<string, http.RequestListener>;
  /** --cors: origins allowed; empty or containing '*' allows every origin (etcd's default). */
  cors?: readonly string[];
  /** --host-whitelist: Host names a plain-HTTP request may name; empty or containing '*' allows all. */
  hostWhitelist?: readonly string[];
}

export interface ClientListenerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** A unix socket path (unix:// and unixs:// URLs) to listen on instead of host and port. */
  path?: string;
  /** The gRPC methods served (createGrpcServer). */
  grpcServer: GrpcRoutes;
  /** Stream limit and keepalive of the gRPC connections; etcd's defaults when absent. */
  http2?: Http2ServerOptions;
  http: HttpHandlers;
  /** Serve TLS instead of plaintext; ALPN picks h2 for gRPC clients and http/1.1 for the rest (chooseProtocol). */
  tls?: tls.TlsOptions;
  /** With `tls`: a verified client whose certificate this refuses is disconnected at once. */
  acceptClient?: (socket: tls.TLSSocket) => boolean;
  /** Told of each TLS connection refused before any call: a failed handshake or a refused certificate. */
  onRefusedConnection?: (refusal: TlsRefusal) => void;
  /**
   * Accept connections but leave them unread (no TLS handshake, no answer) until serve() is
   * called, as etcd's client port answers nothing before the member is published; absent or
   * false serves at once.
   */
  waitForServe?: boolean;
}

export interface ClientListener {
  port: number;
  /** Starts answering, the connections that waited first; does nothing when already serving. */
  serve(): void;
  close(): Promise<void>;
}

/** True when `list` (--cors, --host-whitelist) is empty or holds '*' or `name`, as etcd's access controller reads them. */
function listAllows(list: readonly string[] | undefined, name: string): boolean {
  return list === undefined || list.length === 0 || list.includes('*') || list.includes(name);
}

/** The Host header's name without its port, as etcd's httputil.GetHostname reads it. */
function requestHostname(request: http.IncomingMessage): string {
  const host = request.headers.host ?? '';
  const port = /^(.*):\d*$/.exec(host);
  if (port === null) return host;
  const name = port[1] as string;
  return name.startsWith('[') && name.endsWith(']') ? name.slice(1, -1) : name;
}

/** etcd's answer to a plain-HTTP request whose Host is not in --host-whitelist (status 421). */
function hostRefusalText(host: string): string {
  return `
etcd received your request, but the Host header was unrecognized.

To fix this, choose one of the following options:
- Enable TLS, then any HTTPS request will be allowed.
- Add the hostname you want to use to the whitelist in settings.
  - e.g. etcd --host-whitelist ${JSON.stringify(host)}

This requirement has been added to help prevent "DNS Rebinding" attacks (CVE-2018-5702).
`;
}

/**
 * etcd's access controller in front of the HTTP answers of the client port: plain-HTTP requests
 * must name a whitelisted host, allowed origins get the CORS headers, and OPTIONS is answered at
 * once. Returns false when it answered the request itself.
 */
function accessControl(handlers: HttpHandlers, request: http.IncomingMessage, response: http.ServerResponse): boolean {
  if (!(request.socket as tls.TLSSocket).encrypted) {
    const host = requestHostname(request);
    if (!listAllows(handlers.hostWhitelist, host)) {
      sendText(response, 421, `${hostRefusalText(host)}\n`);
      return false;
    }
  }
  const origin = listAllows(handlers.cors, '*') ? '*' : request.headers.origin;
  if (origin !== undefined && listAllows(handlers.cors, origin)) {
    response.setHeader('Access-Control-Allow-Methods', 'POST, GET, OPTIONS, PUT, DELETE');
    response.setHeader('Access-Control-Allow-Origin', origin);
    response.setHeader('Access-Control-Allow-Headers', 'accept, content-type, authorization');
  }
  if (request.method === 'OPTIONS') {
    response.writeHead(200, { 'Content-Length': '0' });
    response.end();
    return false;
  }
  return true;
}

/** Sends a complete body with its length, as Go's net/http does for small answers. */
function send(response: http.ServerResponse, status: number, body: string, headers: http.OutgoingHttpHeaders) {
  response.writeHead(status, { ...headers, 'Content-Length': Buffer.byteLength(body) });
  response.end(body);
}

function sendText(response: http.ServerResponse, status: number, body: string, headers: http.OutgoingHttpHeaders = {}) {
  send(response, status, body, {
    ...headers,
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
  });
}

/** etcd answers non-GET requests to /health and /version with Go's 405 text. */
function allowGetOnly(request: http.IncomingMessage, response: http.ServerResponse): boolean {
  if (request.method === 'GET') return true;
  sendText(response, 405, 'Method Not Allowed\n', { Allow: 'GET' });
  return false;
}

/** The alarm names a /health request asks to leave out (?exclude=NOSPACE&exclude=...), as etcd reads them. */
function excludedAlarms(request: http.IncomingMessage): ReadonlySet<string> {
  const url = new URL(request.url ?? '/', 'http://localhost');
  return new Set(url.searchParams.getAll('exclude'));
}

/** Answers GET /health with the report, as etcd does. */
export async function serveHealth(
  handlers: HttpHandlers,
  request: http.IncomingMessage,
  response: http.ServerResponse,
) {
  if (!allowGetOnly(request, response)) return;
  let report: HealthReport;
  try {
    report = await handlers.health(excludedAlarms(request));
  } catch (error) {
    report = { health: false, reason: error instanceof Error ? error.message : String(error) };
  }
  // etcd 3.4 writes the health flag as a string with no reason: a healthy answer lets Go sniff the
  // content type, an unhealthy one goes out as Go's http.Error (a trailing newline, nosniff).
  const body = JSON.stringify({ health: String(report.health) });
  if (report.health) send(response, 200, body, { 'Content-Type': 'text/plain; charset=utf-8' });
  else sendText(response, 503, `${body}\n`);
}

function serveVersion(handlers: HttpHandlers, request: http.IncomingMessage, response: http.ServerResponse) {
  if (!allowGetOnly(request, response)) return;
  send(response, 200, JSON.stringify(versionBody(handlers.clusterVersion?.())), { 'Content-Type': 'application/json' });
}

/** The route serving `path`: an exact key, or a key ending in '/' that `path` starts with. */
export function findRoute(
  routes: Record<string, http.RequestListener>,
  path: string,
): http.RequestListener | undefined {
  const exact = routes[path];
  if (exact !== undefined) return exact;
  const prefix = Object.keys(routes).find((key) => key.endsWith('/') && path.startsWith(key));
  return prefix === undefined ? undefined : routes[prefix];
}

function httpListener(handlers: HttpHandlers): http.RequestListener {
  return (request, response) => {
    if (!accessControl(handlers, request, response)) return;
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    const route = findRoute(handlers.routes ?? {}, path);
    if (route !== undefined) return void route(request, response);
    if (path === '/health') return void serveHealth(handlers, request, response);
    if (path === '/version') return serveVersion(handlers, request, response);
    sendText(response, 404, '404 page not found\n');
  };
}

/**
 * Reads until the bytes seen either match the whole HTTP/2 preface or stop matching it, then
 * puts them back so the chosen server reads the connection from its first byte. A client that
 * has not shown which protocol it speaks clientPrefaceMsMax after connecting is closed, however
 * slowly it trickles bytes in.
 */
function classify(socket: net.Socket): Promise<'grpc' | 'http' | 'closed'> {
  return new Promise((resolve) => {
    let seen = Buffer.alloc(0);
    const finish = (kind: 'grpc' | 'http' | 'closed') => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      clearTimeout(deadline);
      socket.pause();
      if (seen.length > 0) socket.unshift(seen);
      resolve(kind);
    };
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const compared = Math.min(seen.length, http2Preface.length);
      if (!seen.subarray(0, compared).equals(http2Preface.subarray(0, compared))) finish('http');
      else if (compared === http2Preface.length) finish('grpc');
    };
    const onEnd = () => finish(seen.length === 0 ? 'closed' : 'http');
    socket.on('data', onData);
    socket.once('end', onEnd);
    // A connection accepted paused (listenClient) reads nothing until resumed.
    socket.resume();
    const deadline = setTimeout(() => {
      finish('closed');
      socket.destroy();
    }, clientPrefaceMsMax);
    deadline.unref();
  });
}

/**
 * ALPN: gRPC clients offer only h2 and get it. Clients that also speak HTTP/1.1 (curl, browsers)
 * get http/1.1, because our HTTP/2 server answers gRPC only; etcd's Go server would speak h2 to
 * them and route by content type, with the same answers.
 */
function chooseProtocol({ protocols }: { protocols: string[] }): string | undefined {
  if (protocols.includes('http/1.1')) return 'http/1.1';
  return protocols.includes('h2') ? 'h2' : undefined;
}

/** Starts listening on the client port; resolves once bound, with the port actually used. */
export async function listenClient(options: ClientListenerOptions): Promise<ClientListener> {
  const httpServer = http.createServer(httpListener(options.http));
  const sockets = new Set<net.Socket>();
  const route = (socket: net.Socket) => {
    if (options.acceptClient !== undefined && !options.acceptClient(socket as tls.TLSSocket)) {
      options.onRefusedConnection?.(
        certificateRefusal(socket as tls.TLSSocket, tlsErrorTexts.certificateAuthenticationFailed),
      );
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    void classify(socket).then((kind) => {
      if (kind === 'grpc') {
        serveGrpcConnection(socket, options.grpcServer, options.http2);
      } else if (kind === 'http') {
        httpServer.emit('connection', socket);
        // node:http reads the socket's handle directly and would leave the bytes we peeked at
        // (and put back) sitting in the paused stream; resuming delivers them as 'data'.
        socket.resume();
      } else socket.destroy();
    });
  };
  // A TLS server that never listens itself: connections are handed to it when they are answered,
  // so one that waits has not even begun its handshake.
  const tlsServer = options.tls
    ? tls.createServer({ ALPNCallback: chooseProtocol, handshakeTimeout: clientHandshakeMsMax, ...options.tls }, route)
    : undefined;
  // Node reports a handshake that failed or timed out (handshakeTimeout) here and leaves the
  // socket open; nothing more will come of it.
  tlsServer?.on('tlsClientError', (error: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
    options.onRefusedConnection?.(handshakeRefusal(socket, error));
    socket.destroy();
  });
  const answer = (socket: net.Socket) =>
    tlsServer === undefined ? route(socket) : tlsServer.emit('connection', socket);
  const waiting = new Set<net.Socket>();
  let serving = options.waitForServe !== true;
  // Paused on accept, so a waiting connection's bytes stay in the kernel until it is answered.
  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    if (serving) return void answer(socket);
    waiting.add(socket);
    socket.once('close', () => waiting.delete(socket));
    socket.on('error', () => socket.destroy());
    if (waiting.size <= clientConnectionsWaitingMax) return;
    const oldest = waiting.values().next().value as net.Socket;
    waiting.delete(oldest);
    oldest.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const listening = () => {
      server.off('error', reject);
      resolve();
    };
    if (options.path !== undefined) server.listen(options.path, listening);
    else server.listen(options.port, options.host, listening);
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : 0,
    serve: () => {
      if (serving) return;
      serving = true;
      const answered = [...waiting];
      waiting.clear();
      for (const socket of answered) if (!socket.destroyed) answer(socket);
    },
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      httpServer.close();
      for (const socket of [...sockets, ...waiting]) socket.destroy();
      await closed;
    },
  };
}
