/**
 * The peer transport over WebSocket: each member listens on its --listen-peer-urls (ws, or wss with
 * the --peer-* TLS flags) and dials every other member's advertised peer URL, one outgoing
 * connection per peer. A member sends only on the connections it dialed and receives only on those
 * it accepted, so each direction has one ordered stream, as etcd's rafthttp streams do.
 *
 * The dialer names itself and its cluster in the upgrade request (etcd's X-Server-From,
 * X-Etcd-Cluster-ID and X-Raft-To headers); the listener refuses a foreign cluster with 412 and
 * etcd's "cluster ID mismatch", an unknown member with 404, a removed member with 410. Every frame
 * carries the cluster ID again and is checked before Raft sees it.
 *
 * A snapshot's database is posted to `/raft/snapshot` behind its MsgSnap frame (see
 * actors/peer/snapshot-transfer.ts); the same identity checks apply before anything is stored.
 *
 * Plain HTTP requests on the peer port go to the member's handler (etcd's GET /members and POST
 * /members/promote/<id>); the helpers at the bottom are the client side of those two requests.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { type Duplex, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { TLSSocket } from 'node:tls';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { TlsConfig } from '../../src/config/config.js';
import { peerDialBackoffMsDefault, peerDialBackoffMsMax, peerPingIntervalMsDefault } from '../../src/lib/limits.js';
import { formatId, parseHexId as parseHexText } from '../../src/membership/ids.js';
import { membersFromPeerJson, type ClusterMember } from '../../src/membership/cluster-member.js';
import { ClusterIdMismatchError, FrameTooLargeError } from '../../src/raft/message-codec.js';
import type { Message, NodeId } from '../../src/raft/types.js';
import { readBodyBounded } from '../shared/http-body.js';
import { readSnapshotHeader, snapshotPath, snapshotStream } from './snapshot-transfer.js';
import {
  defaultTransportLimits,
  notFoundAnswer,
  type PeerAnswer,
  type PeerCall,
  peerCallBodyBytesMax,
  type OutgoingLink,
  type PeerLog,
  silentPeerLog,
  type TransportLimits,
  TransportBase,
  truncateUtf8,
} from './links.js';

export { type PeerLog, type RaftTransport, type TransportStats, silentPeerLog } from './links.js';

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

export interface PeerTransportOptions {
  localId: NodeId;
  clusterId: bigint;
  /** --listen-peer-urls: http:// listens for ws, https:// for wss with `tls`. */
  listenUrls: readonly string[];
  /** The --peer-* TLS flags; used to listen on https URLs and to dial https peers. */
  tls?: TlsConfig;
  log?: PeerLog;
  limits?: Partial<TransportLimits>;
  dialBackoffMsDefault?: number;
  dialBackoffMsMax?: number;
  pingIntervalMs?: number;
}

interface TlsMaterial {
  cert?: Buffer;
  key?: Buffer;
  ca?: Buffer;
}

/** The connection this member dialed to one peer, redialed with bounded backoff until removed. */
class DialedPeer implements OutgoingLink {
  socket: WebSocket | undefined;
  open = false;
  awaitingPong = false;
  removed = false;
  attempts = 0;
  backoffMs: number;
  redialTimer: NodeJS.Timeout | undefined;
  lastFailure = '';

  constructor(
    readonly id: NodeId,
    public urls: readonly string[],
    backoffMs: number,
  ) {
    this.backoffMs = backoffMs;
  }

  isOpen(): boolean {
    return this.open && this.socket?.readyState === WebSocket.OPEN;
  }

  bufferedBytes(): number {
    return this.socket?.bufferedAmount ?? 0;
  }

  write(frame: Uint8Array, written?: (error?: Error | null) => void): void {
    (this.socket as WebSocket).send(frame, { binary: true, compress: false }, written);
  }
}

export class PeerTransport extends TransportBase<readonly string[]> {
  private readonly dialed = new Map<NodeId, DialedPeer>();
  private readonly inbound = new Map<NodeId, Set<WebSocket>>();
  private readonly removedIds = new Set<NodeId>();
  /** Dials refused by the listener; their follow-up abort error says nothing new. */
  private readonly refusedSockets = new WeakSet<WebSocket>();
  private readonly servers: (http.Server | https.Server)[] = [];
  private readonly webSockets: WebSocketServer;
  private readonly backoffMsDefault: number;
  private readonly backoffMsMax: number;
  private readonly pingIntervalMs: number;
  private tlsMaterial: TlsMaterial = {};
  private pingTimer: NodeJS.Timeout | undefined;
  private removedHandler: () => void = () => {};
  private started = false;
  private closed = false;

  constructor(private readonly options: PeerTransportOptions) {
    super({ localId: options.localId, clusterId: options.clusterId }, options.log ?? silentPeerLog, {
      ...defaultTransportLimits,
      ...options.limits,
    });
    this.backoffMsDefault = options.dialBackoffMsDefault ?? peerDialBackoffMsDefault;
    this.backoffMsMax = options.dialBackoffMsMax ?? peerDialBackoffMsMax;
    this.pingIntervalMs = options.pingIntervalMs ?? peerPingIntervalMsDefault;
    this.webSockets = new WebSocketServer({
      noServer: true,
      maxPayload: this.limits.frameBytesMax,
      perMessageDeflate: false,
      skipUTF8Validation: true,
    });
    this.webSockets.on('headers', (headers) => headers.push(...this.identityHeaders()));
  }

  /** Listens on every --listen-peer-urls address and dials the peers added so far. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.tlsMaterial = readTlsMaterial(this.options.tls);
    try {
      for (const text of this.options.listenUrls) this.servers.push(await this.listen(new URL(text)));
    } catch (error) {
      await this.close();
      throw error;
    }
    this.pingTimer = setInterval(() => this.pingPeers(), this.pingIntervalMs);
    this.pingTimer.unref();
    for (const peer of this.dialed.values()) this.dial(peer);
  }

  /** The URLs actually bound, in --listen-peer-urls order (port 0 resolved). */
  listeningUrls(): string[] {
    return this.servers.map((server, position) => {
      const url = new URL(this.options.listenUrls[position] as string);
      url.port = String((server.address() as AddressInfo).port);
      return url.toString().replace(/\/$/, '');
    });
  }

  addPeer(id: NodeId, urls: readonly string[]): void {
    if (id === this.identity.localId) return;
    if (this.dialed.has(id)) return this.updatePeer(id, urls);
    this.removedIds.delete(id);
    const peer = new DialedPeer(id, urls, this.backoffMsDefault);
    this.dialed.set(id, peer);
    if (this.started && !this.closed) this.dial(peer);
  }

  /** New advertised URLs: the connection is redialed unless it already uses one of them. */
  updatePeer(id: NodeId, urls: readonly string[]): void {
    const peer = this.dialed.get(id);
    if (peer === undefined) return;
    const current = peer.urls[peer.attempts % peer.urls.length];
    peer.urls = urls;
    if (peer.socket !== undefined && current !== undefined && !urls.includes(current)) peer.socket.terminate();
  }

  /** Stops dialing `id`, closes its connections both ways and refuses it from now on (410). */
  removePeer(id: NodeId): void {
    const peer = this.dialed.get(id);
    this.dialed.delete(id);
    this.removedIds.add(id);
    if (peer !== undefined) {
      peer.removed = true;
      clearTimeout(peer.redialTimer);
      peer.socket?.close(peerCloseCodes.peerRemoved, 'peer removed');
    }
    for (const socket of this.inbound.get(id) ?? []) socket.close(peerCloseCodes.peerRemoved, 'peer removed');
    this.inbound.delete(id);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pingTimer);
    for (const peer of this.dialed.values()) {
      peer.removed = true;
      clearTimeout(peer.redialTimer);
      peer.socket?.terminate();
    }
    for (const sockets of this.inbound.values()) for (const socket of sockets) socket.terminate();
    this.inbound.clear();
    await Promise.all(this.servers.map((server) => closeServer(server)));
  }

  /** Called once a peer refuses this member as permanently removed (410), as etcd's rafthttp reports it. */
  onRemoved(handler: () => void): void {
    this.removedHandler = handler;
  }

  activePeers(): NodeId[] {
    return [...this.dialed.values()].filter((peer) => peer.isOpen()).map((peer) => peer.id);
  }

  protected outgoingLink(id: NodeId): OutgoingLink | undefined {
    return this.dialed.get(id);
  }

  private identityHeaders(): string[] {
    return [`X-Etcd-Cluster-ID: ${formatId(this.identity.clusterId)}`, `X-Server-From: ${formatId(this.identity.localId)}`];
  }

  private async listen(url: URL): Promise<http.Server | https.Server> {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new Error(`listen-peer-urls: unsupported scheme ${JSON.stringify(url.protocol)} in ${url.toString()}`);
    }
    const server = url.protocol === 'https:' ? https.createServer(this.serverTlsOptions()) : http.createServer();
    // A snapshot body may take longer than Node's whole-request limit; its stream has an idle timeout instead.
    server.requestTimeout = 0;
    server.on('request', (request: http.IncomingMessage, response: http.ServerResponse) => {
      if (!this.closed && new URL(request.url ?? '/', 'http://peer').pathname === snapshotPath) return void this.serveSnapshot(request, response);
      if (this.closed) return void response.writeHead(404).end('404 page not found\n');
      this.serveCall(request, response);
    });
    server.on('upgrade', (request: http.IncomingMessage, socket: Duplex, head: Buffer) => this.handleUpgrade(request, socket, head));
    if (url.protocol === 'https:') this.watchTls(server as https.Server);
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(Number(url.port || 80), host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.log.info({ address: url.toString() }, 'listening for peers');
    return server;
  }

  private serverTlsOptions(): https.ServerOptions {
    const tls = this.options.tls;
    if (tls === undefined || tls.certFile === '' || tls.keyFile === '') {
      throw new Error('listen-peer-urls: an https URL needs --peer-cert-file and --peer-key-file');
    }
    // --peer-cert-allowed-cn only means something when a client certificate is demanded.
    const verifyClients = tls.clientCertAuth || (tls.allowedCn ?? '') !== '';
    return { ...this.tlsMaterial, requestCert: verifyClients, rejectUnauthorized: verifyClients };
  }

  /** Logs refused handshakes and enforces --peer-cert-allowed-cn, as etcd's TLS listener does. */
  private watchTls(server: https.Server): void {
    server.on('tlsClientError', (error: NodeJS.ErrnoException, socket) => {
      // Node often reports a refused client certificate only as a hang-up, so say what to check.
      const hint = 'TLS handshake failed: check the peer certificate against --peer-trusted-ca-file';
      this.log.warn({ 'remote-addr': socket.remoteAddress, error: error.message, code: error.code, hint }, 'rejected connection from peer');
    });
    const allowedCn = this.options.tls?.allowedCn ?? '';
    if (allowedCn === '') return;
    server.on('secureConnection', (socket: TLSSocket) => {
      const commonName = socket.getPeerCertificate().subject?.CN;
      if (commonName === allowedCn) return;
      this.log.warn(
        { 'remote-addr': socket.remoteAddress, 'common-name': commonName, 'allowed-cn': allowedCn },
        'rejected connection from peer: CommonName authentication failed',
      );
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
      this.log.warn({ ...fields, 'local-member-cluster-id': formatId(this.identity.clusterId), 'remote-peer-cluster-id': remote }, 'request cluster ID mismatch');
      return this.refuse(socket, 412, peerRefusals.clusterIdMismatch);
    }
    if (from !== undefined && this.removedIds.has(from)) return this.refuse(socket, 410, peerRefusals.memberRemoved);
    if (from === undefined || !this.dialed.has(from)) {
      this.log.warn(fields, 'failed to find remote peer in cluster');
      return this.refuse(socket, 404, peerRefusals.senderNotFound);
    }
    if (to !== this.identity.localId) {
      this.log.warn(fields, 'ignored streaming request; ID mismatch');
      return this.refuse(socket, 412, peerRefusals.toFieldMismatch);
    }
    this.webSockets.handleUpgrade(request, socket, head, (webSocket) => this.acceptInbound(from, webSocket));
  }

  /**
   * Posts a snapshot stream to the peer's /raft/snapshot and resolves on its 204. A stream has no
   * overall deadline (a database may be large); one that stalls for snapshotIdleMs is abandoned.
   */
  async sendSnapshot(message: Message, dbPath: string): Promise<void> {
    const peer = this.dialed.get(message.to);
    const base = peer?.urls[peer.attempts % Math.max(1, peer.urls.length)];
    if (base === undefined) throw new Error(`no peer URL for ${formatId(message.to)}`);
    const target = new URL(`${base.replace(/\/$/, '')}${snapshotPath}`);
    const secure = target.protocol === 'https:';
    const headers = Object.fromEntries(this.identityHeaders().map((line) => line.split(': ') as [string, string]));
    const frame = this.snapshotFrame(message);
    const request = (secure ? https.request : http.request)(target, {
      method: 'POST',
      headers: { ...headers, 'X-Raft-To': formatId(message.to), 'Content-Type': 'application/octet-stream' },
      timeout: snapshotIdleMs,
      ...(secure ? this.tlsMaterial : {}),
    });
    request.on('timeout', () => request.destroy(new Error(`snapshot to ${target.toString()} stalled for ${snapshotIdleMs} ms`)));
    const answered = new Promise<http.IncomingMessage>((resolve, reject) => {
      request.on('response', resolve);
      request.on('error', reject);
    });
    await pipeline(Readable.from(snapshotStream(frame, dbPath)), request);
    const response = await answered;
    const chunks: Buffer[] = [];
    for await (const chunk of response) if (chunks.length < 16) chunks.push(chunk as Buffer);
    if (response.statusCode !== 204) throw new Error(`peer answered the snapshot with ${response.statusCode}: ${Buffer.concat(chunks).toString('utf8').trim()}`);
  }

  /** A peer API call over HTTP: the body (bounded) goes to the member, its answer back. */
  private serveCall(request: http.IncomingMessage, response: http.ServerResponse): void {
    const method = request.method === 'GET' || request.method === 'POST' ? request.method : undefined;
    const path = new URL(request.url ?? '/', 'http://peer').pathname;
    readBodyBounded(request, peerCallBodyBytesMax, () => new Error(`peer request body exceeds ${peerCallBodyBytesMax} bytes`))
      .then((body) => (method === undefined ? notFoundAnswer : this.answerCall({ method, path, body: body.toString('utf8') })))
      .then(
        (answer) => {
          response.setHeader('X-Etcd-Cluster-ID', formatId(this.identity.clusterId));
          response.writeHead(answer.status, { 'Content-Type': answer.contentType }).end(answer.body);
        },
        // The bound destroyed the request and its connection: there is no one left to answer.
        () => undefined,
      );
  }

  /** A peer API call to member `to`, tried on each of its peer URLs until one answers. */
  async call(to: NodeId, call: PeerCall, timeoutMs: number): Promise<PeerAnswer> {
    const urls = this.dialed.get(to)?.urls ?? [];
    let failure: Error = new Error(`no peer URL for ${formatId(to)}`);
    for (const base of urls) {
      try {
        const answer = await peerHttpRequest(call.method, `${base.replace(/\/$/, '')}${call.path}`, timeoutMs, this.options.tls, call.method === 'POST' ? call.body : undefined);
        return { status: answer.status, contentType: answer.contentType, body: answer.body };
      } catch (error) {
        failure = error as Error;
      }
    }
    throw failure;
  }

  /** etcd's snapshot handler: identity checks, then the stream goes to the member; 204 once it is stored and stepped. */
  private async serveSnapshot(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const answer = (status: number, text: string) => {
      response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close' }).end(`${text}\n`);
      request.resume();
    };
    response.setHeader('X-Etcd-Cluster-ID', formatId(this.identity.clusterId));
    if (request.method !== 'POST') return answer(405, 'Method Not Allowed');
    request.socket.setTimeout(snapshotIdleMs, () => request.destroy(new Error(`snapshot stream stalled for ${snapshotIdleMs} ms`)));
    const from = parseHexId(request.headers['x-server-from']);
    if (parseHexId(request.headers['x-etcd-cluster-id']) !== this.identity.clusterId) return answer(412, peerRefusals.clusterIdMismatch);
    if (from !== undefined && this.removedIds.has(from)) return answer(410, peerRefusals.memberRemoved);
    if (from === undefined || !this.dialed.has(from)) return answer(404, peerRefusals.senderNotFound);
    try {
      const { frame, rest } = await readSnapshotHeader(request, this.limits.frameBytesMax);
      await this.acceptSnapshot(frame, from, { kind: 'stream', chunks: rest });
      response.writeHead(204).end();
    } catch (error) {
      this.log.warn({ 'remote-peer-id': formatId(from), error: (error as Error).message }, 'failed to receive snapshot');
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
    for (const older of this.inbound.get(from) ?? []) older.close(peerCloseCodes.replaced, 'replaced by a newer connection');
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
      if (error instanceof ClusterIdMismatchError) webSocket.close(peerCloseCodes.clusterIdMismatch, 'request cluster ID mismatch');
      else if (error instanceof FrameTooLargeError) webSocket.close(1009, 'peer frame too large');
      else webSocket.close(peerCloseCodes.malformedFrame, truncateUtf8((error as Error).message, 123));
    }
  }

  private dial(peer: DialedPeer): void {
    if (peer.removed || this.closed || peer.urls.length === 0) return;
    const base = new URL(peer.urls[peer.attempts % peer.urls.length] as string);
    const secure = base.protocol === 'https:';
    const target = `${secure ? 'wss' : 'ws'}://${base.host}${peerStreamPath}`;
    const socket = new WebSocket(target, {
      headers: {
        'X-Server-From': formatId(this.identity.localId),
        'X-Etcd-Cluster-ID': formatId(this.identity.clusterId),
        'X-Raft-To': formatId(peer.id),
      },
      perMessageDeflate: false,
      skipUTF8Validation: true,
      handshakeTimeout: this.backoffMsMax * 2,
      // A zero mask lets ws skip XOR-ing every payload byte; masking only protects browser proxies.
      generateMask: (mask: Buffer) => void mask.fill(0),
      ...(secure ? this.tlsMaterial : {}),
    });
    peer.socket = socket;
    let remoteClusterId: bigint | undefined;
    socket.on('upgrade', (response) => (remoteClusterId = parseHexId(response.headers['x-etcd-cluster-id'])));
    socket.on('unexpected-response', (request, response) => this.readRefusal(peer, socket, request, response));
    socket.on('open', () => this.linkOpened(peer, socket, remoteClusterId));
    socket.on('pong', () => (peer.awaitingPong = false));
    socket.on('error', (error) => {
      if (!this.refusedSockets.has(socket)) this.noteFailure(peer, error.message);
    });
    socket.on('close', (code, reason) => this.linkClosed(peer, socket, code, reason.toString()));
  }

  private linkOpened(peer: DialedPeer, socket: WebSocket, remoteClusterId: bigint | undefined): void {
    if (remoteClusterId !== this.identity.clusterId) {
      this.noteFailure(peer, `remote peer cluster ID ${remoteClusterId === undefined ? 'none' : formatId(remoteClusterId)}`, 'request sent was ignored by remote peer due to cluster ID mismatch');
      socket.close(peerCloseCodes.clusterIdMismatch, 'request cluster ID mismatch');
      return;
    }
    peer.open = true;
    peer.awaitingPong = false;
    peer.backoffMs = this.backoffMsDefault;
    peer.lastFailure = '';
    this.log.info({ 'local-member-id': formatId(this.identity.localId), 'remote-peer-id': formatId(peer.id) }, 'peer became active');
  }

  private linkClosed(peer: DialedPeer, socket: WebSocket, code: number, reason: string): void {
    if (peer.socket !== socket) return;
    peer.socket = undefined;
    if (peer.open) {
      peer.open = false;
      this.log.warn({ 'remote-peer-id': formatId(peer.id), code, reason }, 'peer became inactive (message send to peer failed)');
    }
    if (peer.removed || this.closed) return;
    peer.attempts += 1;
    peer.redialTimer = setTimeout(() => this.dial(peer), peer.backoffMs);
    peer.redialTimer.unref();
    peer.backoffMs = Math.min(peer.backoffMs * 2, this.backoffMsMax);
  }

  /** A refused upgrade: read etcd's one-line reason, log it once, and let the close redial. */
  private readRefusal(peer: DialedPeer, socket: WebSocket, request: http.ClientRequest, response: http.IncomingMessage): void {
    const chunks: Buffer[] = [];
    let bytes = 0;
    response.on('data', (chunk: Buffer) => {
      if (bytes < 1024) chunks.push(chunk);
      bytes += chunk.length;
    });
    response.on('error', () => {});
    response.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8').trim().slice(0, 1024);
      const remoteClusterId = parseHexId(response.headers['x-etcd-cluster-id']);
      if (response.statusCode === 410 && text === peerRefusals.memberRemoved) queueMicrotask(() => this.removedHandler());
      const message =
        text === peerRefusals.clusterIdMismatch || remoteClusterId !== this.identity.clusterId
          ? 'request sent was ignored by remote peer due to cluster ID mismatch'
          : 'peer refused the stream request';
      this.noteFailure(peer, `${response.statusCode}: ${text}`, message);
      this.refusedSockets.add(socket);
      socket.terminate();
    });
    request.on('error', () => {});
  }

  /** Logs a dial failure when it differs from the last one, so a down peer does not flood the log. */
  private noteFailure(peer: DialedPeer, detail: string, message = 'failed to dial remote peer'): void {
    if (this.closed || peer.removed || detail === peer.lastFailure) return;
    peer.lastFailure = detail;
    this.log.warn({ 'local-member-id': formatId(this.identity.localId), 'remote-peer-id': formatId(peer.id), error: detail }, message);
  }

  /** Closes dialed connections whose peer missed the previous ping, so a silent peer is redialed. */
  private pingPeers(): void {
    for (const peer of this.dialed.values()) {
      if (!peer.isOpen()) continue;
      if (peer.awaitingPong) {
        peer.socket?.terminate();
        continue;
      }
      peer.awaitingPong = true;
      peer.socket?.ping();
    }
  }
}

function readTlsMaterial(tls: TlsConfig | undefined): TlsMaterial {
  if (tls === undefined) return {};
  const material: TlsMaterial = {};
  if (tls.certFile !== '') material.cert = readFileSync(tls.certFile);
  if (tls.keyFile !== '') material.key = readFileSync(tls.keyFile);
  if (tls.trustedCaFile !== '') material.ca = readFileSync(tls.trustedCaFile);
  return material;
}

/** An etcd ID header: lowercase hex, at most 16 digits. */
function parseHexId(value: string | string[] | undefined): bigint | undefined {
  return typeof value === 'string' ? parseHexText(value) : undefined;
}

function closeServer(server: http.Server | https.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** What one plain HTTP request to a peer answered. */
export interface PeerHttpAnswer {
  status: number;
  contentType: string;
  body: string;
  clusterId: bigint | undefined;
}

/** A snapshot stream that moves no byte for this long is abandoned (either side). */
const snapshotIdleMs = 30_000;

/** Bytes of a peer's HTTP answer read at most; a member list is far smaller. */
const peerAnswerBytesMax = 4 * 1024 * 1024;

/**
 * One plain HTTP request to a peer URL (http or https with the --peer-* TLS files); a `jsonBody`
 * is sent as application/json (only our own members read those, e.g. forwarded lease calls).
 */
export function peerHttpRequest(method: 'GET' | 'POST', url: string, timeoutMs: number, tls?: TlsConfig, jsonBody?: string): Promise<PeerHttpAnswer> {
  const target = new URL(url);
  const secure = target.protocol === 'https:';
  const requester = secure ? https.request : http.request;
  const headers = jsonBody === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(jsonBody) };
  return new Promise((resolve, reject) => {
    const request = requester(target, { method, headers, timeout: timeoutMs, ...(secure ? readTlsMaterial(tls) : {}) }, (response) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      response.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes <= peerAnswerBytesMax) chunks.push(chunk);
        else response.destroy(new Error(`peer answer from ${url} exceeds ${peerAnswerBytesMax} bytes`));
      });
      response.on('error', reject);
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          contentType: response.headers['content-type'] ?? '',
          body: Buffer.concat(chunks).toString('utf8'),
          clusterId: parseHexId(response.headers['x-etcd-cluster-id']),
        }),
      );
    });
    request.on('timeout', () => request.destroy(new Error(`peer request to ${url} timed out after ${timeoutMs} ms`)));
    request.on('error', reject);
    request.end(jsonBody);
  });
}

/** etcd's getClusterFromRemotePeers: the first peer that answers GET /members names the cluster and its members. */
export async function fetchClusterFromPeers(
  peerUrls: readonly string[],
  timeoutMs: number,
  tls?: TlsConfig,
): Promise<{ clusterId: bigint; members: ClusterMember[]; from: string } | { failures: string[] }> {
  const failures: string[] = [];
  for (const base of peerUrls) {
    const url = `${base.replace(/\/$/, '')}/members`;
    try {
      const answer = await peerHttpRequest('GET', url, timeoutMs, tls);
      if (answer.status !== 200) throw new Error(`status ${answer.status}: ${answer.body.trim().slice(0, 200)}`);
      if (answer.clusterId === undefined) throw new Error('no X-Etcd-Cluster-ID header');
      return { clusterId: answer.clusterId, members: membersFromPeerJson(answer.body), from: base };
    } catch (error) {
      failures.push(`${url}: ${(error as Error).message}`);
    }
  }
  return { failures };
}
