/**
 * A member's connection to an inspector (--inspect-url): the adapter @statelyai/inspect hands its
 * events to, sending each as one JSON text message, as that package's WebSocket inspector does.
 *
 * It never holds the member up: events wait in a bounded queue while the socket is down or slow,
 * and beyond it they are dropped and counted; the socket is redialed with a doubling backoff; its
 * timers are unreferenced. It logs once per connection and once per loss of it.
 */
import { WebSocket } from 'ws';
import {
  inspectBufferedBytesMax,
  inspectDialBackoffMsDefault,
  inspectDialBackoffMsMax,
  inspectQueueEventsMax,
} from '../../src/lib/limits.js';
import type { Logger } from '../shared/logger.js';
import type { MachineInspect } from '../../machines/raft-role.js';
import {
  createMemberInspect,
  inspectionSessionPrefix,
  type InspectionAdapter,
  type StatelyInspectionEvent,
} from './member-inspect.js';

export class InspectionStream implements InspectionAdapter {
  private socket: WebSocket | undefined;
  private open = false;
  private stopped = false;
  private readonly queue: StatelyInspectionEvent[] = [];
  private backoffMs = inspectDialBackoffMsDefault;
  private redial: NodeJS.Timeout | undefined;
  /** Events dropped because the queue was full, since the stream started. */
  dropped = 0;
  /** Events written to the socket, since the stream started. */
  sent = 0;

  constructor(
    private readonly url: string,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.dial();
  }

  send(event: StatelyInspectionEvent): void {
    if (this.stopped) return;
    if (this.queue.length >= inspectQueueEventsMax) {
      this.dropped += 1;
      return;
    }
    this.queue.push(event);
    if (this.open) this.flush();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.redial);
    this.queue.length = 0;
    this.socket?.close();
  }

  private dial(): void {
    if (this.stopped) return;
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.on('open', () => {
      this.open = true;
      this.backoffMs = inspectDialBackoffMsDefault;
      this.logger.info({ 'inspect-url': this.url, 'dropped-events': this.dropped }, 'connected to inspector');
      this.flush();
    });
    // A failed dial emits error then close; the redial waits for close.
    socket.on('error', () => undefined);
    socket.on('close', () => this.lost(socket));
    // Nothing an inspector says is needed; reading keeps the socket from filling.
    socket.on('message', () => undefined);
  }

  private lost(socket: WebSocket): void {
    if (socket !== this.socket) return;
    if (this.open && !this.stopped) {
      this.logger.warn({ 'inspect-url': this.url, 'dropped-events': this.dropped }, 'lost connection to inspector');
    }
    this.open = false;
    this.socket = undefined;
    if (this.stopped) return;
    this.redial = setTimeout(() => this.dial(), this.backoffMs);
    this.redial.unref();
    this.backoffMs = Math.min(this.backoffMs * 2, inspectDialBackoffMsMax);
  }

  /** Writes queued events while the socket takes them; a slow reader leaves the rest queued. */
  private flush(): void {
    const socket = this.socket;
    if (socket === undefined) return;
    while (this.queue.length > 0 && socket.bufferedAmount < inspectBufferedBytesMax) {
      const event = this.queue.shift() as StatelyInspectionEvent;
      this.sent += 1;
      socket.send(JSON.stringify(event), (error) => {
        if (error === undefined || error === null) this.flush();
      });
    }
  }
}

/** A member's inspection: the callback its machines are created with, and the stream it feeds. */
export interface MemberInspection {
  inspect: MachineInspect;
  stream: InspectionStream;
}

/** Starts streaming a member's machines to `url` (--inspect-url); `allEvents` is --inspect-all-events. */
export function startMemberInspection(
  member: string,
  url: string,
  allEvents: boolean,
  logger: Logger,
): MemberInspection {
  const stream = new InspectionStream(url, logger);
  stream.start();
  let failures = 0;
  const onError = (error: unknown) => {
    failures += 1;
    if (failures === 1) logger.warn({ error: String(error) }, 'failed to inspect a state machine event; skipping it');
  };
  const sessionPrefix = inspectionSessionPrefix(member, Date.now());
  return { inspect: createMemberInspect(sessionPrefix, stream, allEvents, onError), stream };
}
