/**
 * A TCP relay in front of a member's plaintext client port that reads the HTTP/2 frames clients
 * send (to count their PINGs and when each came) and can freeze: from then on it forwards nothing
 * either way yet keeps every connection open, as a network path that silently drops packets.
 */
import net from 'node:net';
import { FrameFlag, FrameType, frameHeaderBytes, http2Preface } from '../../src/http2/frames.js';
import { loopbackHost } from './ports.js';

/** What the relay saw of one client connection, times in milliseconds since the relay started. */
export interface RelayedConnection {
  readonly openedMs: number;
  /** When each PING (not a PING ACK) the client sent arrived. */
  readonly pingsMs: number[];
  /** When the client closed or reset the connection; undefined while it is open. */
  closedMs: number | undefined;
}

export class FreezingRelay {
  readonly connections: RelayedConnection[] = [];
  private frozen = false;
  private readonly startedMs = performance.now();
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly server: net.Server) {}

  /** Listens on a free loopback port and relays each connection to `targetPort`. */
  static async start(targetPort: number): Promise<FreezingRelay> {
    const server = net.createServer();
    const relay = new FreezingRelay(server);
    server.on('connection', (client) => relay.relay(client, targetPort));
    await new Promise<void>((resolve) => server.listen(0, loopbackHost, resolve));
    return relay;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Milliseconds since the relay started, the clock of RelayedConnection. */
  nowMs(): number {
    return performance.now() - this.startedMs;
  }

  /** Stops forwarding both ways; connections stay open and new ones are taken but go nowhere. */
  freeze(): void {
    this.frozen = true;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private relay(client: net.Socket, targetPort: number): void {
    const seen: RelayedConnection = { openedMs: this.nowMs(), pingsMs: [], closedMs: undefined };
    this.connections.push(seen);
    const server = net.connect(targetPort, loopbackHost);
    for (const socket of [client, server]) {
      this.sockets.add(socket);
      socket.on('error', () => undefined);
    }
    let input = Buffer.alloc(0);
    let prefaceSeen = false;
    client.on('data', (chunk: Buffer) => {
      input = Buffer.concat([input, chunk]);
      if (!prefaceSeen && input.length >= http2Preface.length) {
        input = input.subarray(http2Preface.length);
        prefaceSeen = true;
      }
      while (prefaceSeen && input.length >= frameHeaderBytes) {
        const length = input.readUIntBE(0, 3);
        if (input.length < frameHeaderBytes + length) break;
        const type = input[3] as number;
        const flags = input[4] as number;
        if (type === FrameType.ping && (flags & FrameFlag.ack) === 0) seen.pingsMs.push(this.nowMs());
        input = input.subarray(frameHeaderBytes + length);
      }
      if (!this.frozen) server.write(chunk);
    });
    server.on('data', (chunk: Buffer) => {
      if (!this.frozen) client.write(chunk);
    });
    client.on('close', () => {
      seen.closedMs ??= this.nowMs();
      if (!this.frozen) server.destroy();
    });
    server.on('close', () => {
      if (!this.frozen) client.destroy();
    });
  }
}
