/**
 * The peer transport over WebSocket. Each member dials every other member's advertised peer URL,
 * one outgoing connection per peer, and sends only on the connections it dialed; it receives only
 * on those it accepted (ws-listener.ts, the listening side this class extends), so each direction
 * has one ordered stream, as etcd's rafthttp streams do.
 *
 * This file is the dialing side and the transport's life: peers added, updated and removed,
 * connections dialed and redialed with bounded backoff, pinged so a silent peer is redialed, and
 * refusals read and logged once. A snapshot's database is posted to the peer's `/raft/snapshot`
 * behind its MsgSnap frame (see actors/peer/snapshot-transfer.ts). The helpers at the bottom are
 * the client side of the peer API's plain HTTP requests (etcd's GET /members and
 * POST /members/promote/<id>).
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { WebSocket } from 'ws';
import type { TlsConfig } from '../../src/config/config.js';
import { peerDialBackoffMsDefault, peerDialBackoffMsMax, peerPingIntervalMsDefault } from '../../src/lib/limits.js';
import { formatId } from '../../src/membership/ids.js';
import { membersFromPeerJson, type ClusterMember } from '../../src/membership/cluster-member.js';
import type { Message, NodeId } from '../../src/raft/types.js';
import { snapshotPath, snapshotStream } from './snapshot-transfer.js';
import type { OutgoingLink, PeerAnswer, PeerCall } from './links.js';
import {
  parseHexId,
  peerCloseCodes,
  PeerListener,
  type PeerListenerOptions,
  peerRefusals,
  peerStreamPath,
  readTlsMaterial,
  snapshotIdleMs,
} from './ws-listener.js';

export { type PeerLog, type RaftTransport, type TransportStats, silentPeerLog } from './links.js';
// The member imports the refusal texts from here, with the transport.
export { peerRefusals } from './ws-listener.js';

export interface PeerTransportOptions extends PeerListenerOptions {
  dialBackoffMsDefault?: number;
  dialBackoffMsMax?: number;
  pingIntervalMs?: number;
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

export class PeerTransport extends PeerListener {
  private readonly dialed = new Map<NodeId, DialedPeer>();
  /** Dials refused by the listener; their follow-up abort error says nothing new. */
  private readonly refusedSockets = new WeakSet<WebSocket>();
  private readonly backoffMsDefault: number;
  private readonly backoffMsMax: number;
  private readonly pingIntervalMs: number;
  private pingTimer: NodeJS.Timeout | undefined;
  private removedHandler: () => void = () => {};
  private started = false;

  constructor(options: PeerTransportOptions) {
    super(options);
    this.backoffMsDefault = options.dialBackoffMsDefault ?? peerDialBackoffMsDefault;
    this.backoffMsMax = options.dialBackoffMsMax ?? peerDialBackoffMsMax;
    this.pingIntervalMs = options.pingIntervalMs ?? peerPingIntervalMsDefault;
  }

  protected knowsPeer(id: NodeId): boolean {
    return this.dialed.has(id);
  }

  /** Listens on every --listen-peer-urls address and dials the peers added so far. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.logConfiguration();
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
    this.closeInbound(id);
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
    await this.closeListeners();
  }

  /** Called once a peer refuses this member as permanently removed (410), as etcd's rafthttp reports it. */
  onRemoved(handler: () => void): void {
    this.removedHandler = handler;
  }

  activePeers(): NodeId[] {
    // Called every tick: one array, not a spread, a filter and a map.
    const active: NodeId[] = [];
    for (const peer of this.dialed.values()) if (peer.isOpen()) active.push(peer.id);
    return active;
  }

  protected outgoingLink(id: NodeId): OutgoingLink | undefined {
    return this.dialed.get(id);
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
    request.on('timeout', () =>
      request.destroy(new Error(`snapshot to ${target.toString()} stalled for ${snapshotIdleMs} ms`)),
    );
    const answered = new Promise<http.IncomingMessage>((resolve, reject) => {
      request.on('response', resolve);
      request.on('error', reject);
    });
    await pipeline(Readable.from(snapshotStream(frame, dbPath)), request);
    const response = await answered;
    const chunks: Buffer[] = [];
    for await (const chunk of response) if (chunks.length < 16) chunks.push(chunk as Buffer);
    if (response.statusCode !== 204)
      throw new Error(
        `peer answered the snapshot with ${response.statusCode}: ${Buffer.concat(chunks).toString('utf8').trim()}`,
      );
  }

  /** A peer API call to member `to`, tried on each of its peer URLs until one answers. */
  async call(to: NodeId, call: PeerCall, timeoutMs: number): Promise<PeerAnswer> {
    const urls = this.dialed.get(to)?.urls ?? [];
    let failure: Error = new Error(`no peer URL for ${formatId(to)}`);
    for (const base of urls) {
      try {
        const answer = await peerHttpRequest(
          call.method,
          `${base.replace(/\/$/, '')}${call.path}`,
          timeoutMs,
          this.options.tls,
          call.method === 'POST' ? call.body : undefined,
        );
        return { status: answer.status, contentType: answer.contentType, body: answer.body };
      } catch (error) {
        failure = error as Error;
      }
    }
    throw failure;
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
      this.noteFailure(
        peer,
        `remote peer cluster ID ${remoteClusterId === undefined ? 'none' : formatId(remoteClusterId)}`,
        'request sent was ignored by remote peer due to cluster ID mismatch',
      );
      socket.close(peerCloseCodes.clusterIdMismatch, 'request cluster ID mismatch');
      return;
    }
    peer.open = true;
    peer.awaitingPong = false;
    peer.backoffMs = this.backoffMsDefault;
    peer.lastFailure = '';
    this.log.info(
      { 'local-member-id': formatId(this.identity.localId), 'remote-peer-id': formatId(peer.id) },
      'peer became active',
    );
  }

  private linkClosed(peer: DialedPeer, socket: WebSocket, code: number, reason: string): void {
    if (peer.socket !== socket) return;
    peer.socket = undefined;
    if (peer.open) {
      peer.open = false;
      this.log.warn(
        { 'remote-peer-id': formatId(peer.id), code, reason },
        'peer became inactive (message send to peer failed)',
      );
    }
    if (peer.removed || this.closed) return;
    peer.attempts += 1;
    peer.redialTimer = setTimeout(() => this.dial(peer), peer.backoffMs);
    peer.redialTimer.unref();
    peer.backoffMs = Math.min(peer.backoffMs * 2, this.backoffMsMax);
  }

  /** A refused upgrade: read etcd's one-line reason, log it once, and let the close redial. */
  private readRefusal(
    peer: DialedPeer,
    socket: WebSocket,
    request: http.ClientRequest,
    response: http.IncomingMessage,
  ): void {
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
      if (response.statusCode === 410 && text === peerRefusals.memberRemoved)
        queueMicrotask(() => this.removedHandler());
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
    this.log.warn(
      { 'local-member-id': formatId(this.identity.localId), 'remote-peer-id': formatId(peer.id), error: detail },
      message,
    );
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

/** What one plain HTTP request to a peer answered. */
export interface PeerHttpAnswer {
  status: number;
  contentType: string;
  body: string;
  clusterId: bigint | undefined;
}

/** Bytes of a peer's HTTP answer read at most; a member list is far smaller. */
const peerAnswerBytesMax = 4 * 1024 * 1024;

/**
 * One plain HTTP request to a peer URL (http or https with the --peer-* TLS files); a `jsonBody`
 * is sent as application/json (only our own members read those, e.g. forwarded lease calls).
 */
export function peerHttpRequest(
  method: 'GET' | 'POST',
  url: string,
  timeoutMs: number,
  tls?: TlsConfig,
  jsonBody?: string,
): Promise<PeerHttpAnswer> {
  const target = new URL(url);
  const secure = target.protocol === 'https:';
  const requester = secure ? https.request : http.request;
  const headers =
    jsonBody === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(jsonBody) };
  return new Promise((resolve, reject) => {
    const request = requester(
      target,
      { method, headers, timeout: timeoutMs, ...(secure ? readTlsMaterial(tls) : {}) },
      (response) => {
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
      },
    );
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
