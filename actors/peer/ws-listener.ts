/**
 * The listening side of the WebSocket peer transport (ws-transport.ts is the dialing side and
 * extends this class). Each member listens on its --listen-peer-urls (ws, or wss with the --peer-*
 * TLS flags) and receives only on the streams it accepted, one per peer, as etcd's rafthttp does.
 *
 * A dialer names itself and its cluster in the upgrade request (etcd's X-Server-From,
 * X-Etcd-Cluster-ID and X-Raft-To headers); the listener refuses a foreign cluster with 412 and
 * etcd's "cluster ID mismatch", an unknown member with 404, a removed member with 410. Every frame
 * carries the cluster ID again and is checked before Raft sees it.
 *
 * A snapshot's database arrives on `/raft/snapshot` behind its MsgSnap frame (see
 * actors/peer/snapshot-transfer.ts); the same identity checks apply before anything is stored.
 * Other plain HTTP requests on the peer port go to the member's handler (etcd's GET /members and
 * POST /members/promote/<id>).
 */
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { checkServerIdentity, type TLSSocket } from 'node:tls';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { TlsConfig } from '../../src/config/config.js';
import { opensslCiphers } from '../../src/config/cipher-suites.js';
import { loadCaBundle, loadKeyPair, readTlsFile, tlsErrorTexts } from '../../src/config/tls-files.js';
import { formatId, parseHexId as parseHexText } from '../../src/membership/ids.js';
import { ClusterIdMismatchError, FrameTooLargeError } from '../../src/raft/message-codec.js';
import type { NodeId } from '../../src/raft/types.js';
import { readBodyBounded } from '../shared/http-body.js';
import { certificateRefusal, handshakeRefusal, logRejectedConnection } from '../shared/tls-refusal.js';
import { readSnapshotHeader, snapshotPath } from './snapshot-transfer.js';
import {
  defaultTransportLimits,
  notFoundAnswer,
  peerCallBodyBytesMax,
  type PeerLog,
  silentPeerLog,
  type TransportLimits,
  TransportBase,
  truncateUtf8,
} from './links.js';

/** The upgrade path peers dial; etcd's rafthttp lives under /raft too. */
export const peerStreamPath = '/raft/stream/tsetcd';

/** WebSocket close codes (4000-4999 are the application's) and the reasons sent with them. */
export const peerCloseCodes = {
  clusterIdMismatch: 4001,
  malformedFrame: 4002,
  peerRemoved: 4003,
  replaced: 4004,
} as const;

/** etcd's texts for refused stream requests. */
export const peerRefusals = {
  clusterIdMismatch: 'cluster ID mismatch',
  senderNotFound: 'error sender not found',
  memberRemoved: 'the member has been permanently removed from the cluster',
  toFieldMismatch: 'to field mismatch',
} as const;

/** A snapshot stream that moves no byte for this long is abandoned (either side). */
export const snapshotIdleMs = 30_000;

/** What the listening side is started with; PeerTransportOptions adds the dialing side's. */
export interface PeerListenerOptions {
  localId: NodeId;
  clusterId: bigint;
  /** --listen-peer-urls: http:// listens for ws, https:// for wss with `tls`. */
  listenUrls: readonly string[];
  /** The --peer-* TLS flags; used to listen on https URLs and to dial https peers. */
  tls?: TlsConfig;
  log?: PeerLog;
  limits?: Partial<TransportLimits>;
}

/** What both the peer servers and the dialed connections are given from the --peer-* TLS flags. */
export interface TlsMaterial {
  cert?: Buffer;
  key?: Buffer;
  ca?: Buffer;
  /** --cipher-suites in OpenSSL's names. */
  ciphers?: string;
  /** false for --peer-auto-tls certificates, which etcd's peers accept without verifying. */
  rejectUnauthorized?: boolean;
}

/** The peer port's servers and the streams peers dialed into this member. */
export abstract class PeerListener extends TransportBase<readonly string[]> {
  protected readonly inbound = new Map<NodeId, Set<WebSocket>>();
  protected readonly removedIds = new Set<NodeId>();
  protected readonly servers: (http.Server | https.Server)[] = [];
  private readonly webSockets: WebSocketServer;
  protected tlsMaterial: TlsMaterial = {};
  protected closed = false;

  constructor(protected readonly options: PeerListenerOptions) {
    super({ localId: options.localId, clusterId: options.clusterId }, options.log ?? silentPeerLog, {
      ...defaultTransportLimits,
      ...options.limits,
    });
    this.webSockets = new WebSocketServer({
      noServer: true,
      maxPayload: this.limits.frameBytesMax,
      perMessageDeflate: false,
      skipUTF8Validation: true,
    });
    this.webSockets.on('headers', (headers) => headers.push(...this.identityHeaders()));
  }

  /** Whether `id` is a member of the cluster this member dials, so one it takes streams from. */
  protected abstract knowsPeer(id: NodeId): boolean;

  protected identityHeaders(): string[] {
    return [
      `X-Etcd-Cluster-ID: ${formatId(this.identity.clusterId)}`,
      `X-Server-From: ${formatId(this.identity.localId)}`,
    ];
  }

  /** Closes the streams a removed peer dialed into this member. */
  protected closeInbound(id: NodeId): void {
    for (const socket of this.inbound.get(id) ?? []) socket.close(peerCloseCodes.peerRemoved, 'peer removed');
    this.inbound.delete(id);
  }

  /** The addresses the peer servers are bound to, as host:port (etcd's listener address). */
  servingAddresses(): string[] {
    return this.servers.map((server) => listenerAddress(server));
  }

  /** Logs what the peer port is configured with before it listens, as etcd does at its start. */
  protected logConfiguration(): void {
    this.log.info({ 'listen-peer-urls': this.options.listenUrls }, 'configuring peer listeners');
    const tls = this.options.tls;
    if (tls === undefined || (tls.certFile === '' && tls.keyFile === '')) return;
    // etcd prints its TLS settings as one text, in this order and spelling.
    const tlsInfo = `cert = ${tls.certFile}, key = ${tls.keyFile}, trusted-ca = ${tls.trustedCaFile}, client-cert-auth = ${tls.clientCertAuth}, crl-file = ${tls.crlFile ?? ''}`;
    this.log.info({ 'tls-info': tlsInfo, 'cipher-suites': tls.cipherSuites ?? [] }, 'starting with peer TLS');
  }

  /** Ends every inbound stream and closes the servers, one after the other with etcd's lines around each. */
  protected async closeListeners(): Promise<void> {
    for (const sockets of this.inbound.values()) for (const socket of sockets) socket.terminate();
    this.inbound.clear();
    for (const server of this.servers) {
      const address = listenerAddress(server);
      this.log.info({ address }, 'stopping serving peer traffic');
      await closeServer(server);
      this.log.info({ address }, 'stopped serving peer traffic');
    }
  }

  protected async listen(url: URL): Promise<http.Server | https.Server> {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new Error(`listen-peer-urls: unsupported scheme ${JSON.stringify(url.protocol)} in ${url.toString()}`);
    }
    const server = url.protocol === 'https:' ? https.createServer(this.serverTlsOptions()) : http.createServer();
    // A snapshot body may take longer than Node's whole-request limit; its stream has an idle timeout instead.
    server.requestTimeout = 0;
    server.on('request', (request: http.IncomingMessage, response: http.ServerResponse) => {
      if (!this.closed && new URL(request.url ?? '/', 'http://peer').pathname === snapshotPath)
        return void this.serveSnapshot(request, response);
      if (this.closed) return void response.writeHead(404).end('404 page not found\n');
      this.serveCall(request, response);
    });
    server.on('upgrade', (request: http.IncomingMessage, socket: Duplex, head: Buffer) =>
      this.handleUpgrade(request, socket, head),
    );
    if (url.protocol === 'https:') this.watchTls(server as https.Server);
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(Number(url.port || 80), host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server;
  }

  private serverTlsOptions(): https.ServerOptions {
    const tls = this.options.tls;
    if (tls === undefined || tls.certFile === '' || tls.keyFile === '') {
      throw new Error('listen-peer-urls: an https URL needs --peer-cert-file and --peer-key-file');
    }
    const allowedCn = tls.allowedCn ?? '';
    const allowedHostname = tls.allowedHostname ?? '';
    if (allowedCn !== '' && allowedHostname !== '')
      throw new Error(tlsErrorTexts.allowedCnAndHostname(allowedCn, allowedHostname));
    // etcd demands a verified client certificate as soon as a trusted CA is given, as on the client port;
    // an allowed CN or hostname is checked on that certificate, so it needs one too.
    const verifyClients = tls.clientCertAuth || tls.trustedCaFile !== '' || allowedCn !== '' || allowedHostname !== '';
    const options: https.ServerOptions = {
      ...this.tlsMaterial,
      requestCert: verifyClients,
      rejectUnauthorized: verifyClients,
    };
    if ((tls.crlFile ?? '') !== '') options.crl = readTlsFile(tls.crlFile ?? '');
    return options;
  }

  /** Logs refused handshakes and enforces --peer-cert-allowed-cn, as etcd's TLS listener does. */
  private watchTls(server: https.Server): void {
    server.on('tlsClientError', (error: NodeJS.ErrnoException, socket: TLSSocket) =>
      logRejectedConnection(this.log, handshakeRefusal(socket, error)),
    );
    const allowedCn = this.options.tls?.allowedCn ?? '';
    const allowedHostname = this.options.tls?.allowedHostname ?? '';
    if (allowedCn === '' && allowedHostname === '') return;
    // Like etcd's VerifyPeerCertificate: a verified certificate must carry the CN, or be valid for the hostname.
    server.on('secureConnection', (socket: TLSSocket) => {
      const certificate = socket.getPeerCertificate();
      const commonName = certificate.subject?.CN;
      const accepted =
        allowedCn !== ''
          ? commonName === allowedCn
          : certificate.raw !== undefined && checkServerIdentity(allowedHostname, certificate) === undefined;
      if (accepted) return;
      logRejectedConnection(this.log, certificateRefusal(socket, tlsErrorTexts.certificateAuthenticationFailed));
      socket.destroy();
    });
  }

  private handleUpgrade(request: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {}); // a refused or reset peer socket is logged where it matters
    const path = new URL(request.url ?? '/', 'http://peer').pathname;
    if (path !== peerStreamPath || this.closed) return this.refuse(socket, 404, '404 page not found');
    const from = parseHexId(request.headers['x-server-from']);
    const clusterId = parseHexId(request.headers['x-etcd-cluster-id']);
    const to = parseHexId(request.headers['x-raft-to']);
    const fields = {
      'local-member-id': formatId(this.identity.localId),
      'remote-peer-id': from === undefined ? 'unknown' : formatId(from),
      'remote-addr': (socket as Socket).remoteAddress,
    };
    if (clusterId !== this.identity.clusterId) {
      const remote = clusterId === undefined ? 'none' : formatId(clusterId);
      this.log.warn(
        { ...fields, 'local-member-cluster-id': formatId(this.identity.clusterId), 'remote-peer-cluster-id': remote },
        'request cluster ID mismatch',
      );
      return this.refuse(socket, 412, peerRefusals.clusterIdMismatch);
    }
    if (from !== undefined && this.removedIds.has(from)) return this.refuse(socket, 410, peerRefusals.memberRemoved);
    if (from === undefined || !this.knowsPeer(from)) {
      this.log.warn(fields, 'failed to find remote peer in cluster');
      return this.refuse(socket, 404, peerRefusals.senderNotFound);
    }
    if (to !== this.identity.localId) {
      this.log.warn(fields, 'ignored streaming request; ID mismatch');
      return this.refuse(socket, 412, peerRefusals.toFieldMismatch);
    }
    this.webSockets.handleUpgrade(request, socket, head, (webSocket) => this.acceptInbound(from, webSocket));
  }

  /** A peer API call over HTTP: the body (bounded) goes to the member, its answer back. */
  private serveCall(request: http.IncomingMessage, response: http.ServerResponse): void {
    const method = request.method === 'GET' || request.method === 'POST' ? request.method : undefined;
    const path = new URL(request.url ?? '/', 'http://peer').pathname;
    readBodyBounded(
      request,
      peerCallBodyBytesMax,
      () => new Error(`peer request body exceeds ${peerCallBodyBytesMax} bytes`),
    )
      .then((body) =>
        method === undefined ? notFoundAnswer : this.answerCall({ method, path, body: body.toString('utf8') }),
      )
      .then(
        (answer) => {
          response.setHeader('X-Etcd-Cluster-ID', formatId(this.identity.clusterId));
          response.writeHead(answer.status, { 'Content-Type': answer.contentType }).end(answer.body);
        },
        // The bound destroyed the request and its connection: there is no one left to answer.
        () => undefined,
      );
  }

  /** etcd's snapshot handler: identity checks, then the stream goes to the member; 204 once it is stored and stepped. */
  private async serveSnapshot(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const answer = (status: number, text: string) => {
      response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close' }).end(`${text}\n`);
      request.resume();
    };
    response.setHeader('X-Etcd-Cluster-ID', formatId(this.identity.clusterId));
    if (request.method !== 'POST') return answer(405, 'Method Not Allowed');
    request.socket.setTimeout(snapshotIdleMs, () =>
      request.destroy(new Error(`snapshot stream stalled for ${snapshotIdleMs} ms`)),
    );
    const from = parseHexId(request.headers['x-server-from']);
    if (parseHexId(request.headers['x-etcd-cluster-id']) !== this.identity.clusterId)
      return answer(412, peerRefusals.clusterIdMismatch);
    if (from !== undefined && this.removedIds.has(from)) return answer(410, peerRefusals.memberRemoved);
    if (from === undefined || !this.knowsPeer(from)) return answer(404, peerRefusals.senderNotFound);
    try {
      const { frame, rest } = await readSnapshotHeader(request, this.limits.frameBytesMax);
      await this.acceptSnapshot(frame, from, { kind: 'stream', chunks: rest });
      response.writeHead(204).end();
    } catch (error) {
      this.log.warn(
        { 'remote-peer-id': formatId(from), error: (error as Error).message },
        'failed to receive snapshot',
      );
      if (!response.headersSent) answer(400, (error as Error).message);
    }
  }

  private refuse(socket: Duplex, status: number, text: string): void {
    const body = `${text}\n`;
    const head = [
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}`,
      'Content-Type: text/plain; charset=utf-8',
      ...this.identityHeaders(),
      `Content-Length: ${Buffer.byteLength(body)}`,
      'Connection: close',
    ];
    socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
    socket.once('finish', () => socket.destroy());
  }

  private acceptInbound(from: NodeId, webSocket: WebSocket): void {
    // A redialing peer leaves its old connection behind; the newest one is the live stream.
    for (const older of this.inbound.get(from) ?? [])
      older.close(peerCloseCodes.replaced, 'replaced by a newer connection');
    this.inbound.set(from, new Set([webSocket]));
    webSocket.on('error', () => {});
    webSocket.on('message', (data: RawData, isBinary: boolean) => this.handleInbound(from, webSocket, data, isBinary));
    webSocket.on('close', () => this.inbound.get(from)?.delete(webSocket));
    this.log.debug({ 'remote-peer-id': formatId(from) }, 'accepted peer stream');
  }

  private handleInbound(from: NodeId, webSocket: WebSocket, data: RawData, isBinary: boolean): void {
    // Frames already parsed behind a refused one are ignored, not delivered.
    if (webSocket.readyState !== WebSocket.OPEN) return;
    if (!isBinary || !Buffer.isBuffer(data)) {
      webSocket.close(peerCloseCodes.malformedFrame, 'malformed peer frame: not a binary message');
      return;
    }
    try {
      this.receive(data, from);
    } catch (error) {
      if (error instanceof ClusterIdMismatchError)
        webSocket.close(peerCloseCodes.clusterIdMismatch, 'request cluster ID mismatch');
      else if (error instanceof FrameTooLargeError) webSocket.close(1009, 'peer frame too large');
      else webSocket.close(peerCloseCodes.malformedFrame, truncateUtf8((error as Error).message, 123));
    }
  }
}

/** The contents of the --peer-* TLS files, for the servers, the dialed connections and plain requests. */
export function readTlsMaterial(tls: TlsConfig | undefined): TlsMaterial {
  if (tls === undefined) return {};
  const material: TlsMaterial = {};
  if (tls.certFile !== '' || tls.keyFile !== '') Object.assign(material, loadKeyPair(tls.certFile, tls.keyFile));
  if (tls.trustedCaFile !== '') material.ca = loadCaBundle(tls.trustedCaFile);
  const ciphers = opensslCiphers(tls.cipherSuites ?? []);
  if (ciphers !== undefined) material.ciphers = ciphers;
  if (tls.selfSigned === true) material.rejectUnauthorized = false;
  return material;
}

/** An etcd ID header: lowercase hex, at most 16 digits. */
export function parseHexId(value: string | string[] | undefined): bigint | undefined {
  return typeof value === 'string' ? parseHexText(value) : undefined;
}

function closeServer(server: http.Server | https.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * A bound server's address as Go prints a listener's: host:port, IPv6 in brackets, and the IPv4
 * wildcard as the dual-stack socket Go opens for it ([::]).
 */
function listenerAddress(server: http.Server | https.Server): string {
  const bound = server.address();
  if (bound === null || typeof bound === 'string') return String(bound);
  if (bound.address === '0.0.0.0' || bound.family === 'IPv6') {
    return `[${bound.address === '0.0.0.0' ? '::' : bound.address}]:${bound.port}`;
  }
  return `${bound.address}:${bound.port}`;
}
