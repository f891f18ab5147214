/**
 * Keeps one lease alive as clientv3's lessor does for `lease keep-alive` and for the sessions of
 * `lock` and `elect`: a LeaseKeepAlive stream that renews the lease a third of its TTL after each
 * answer, opened again half a second after it breaks or is refused (each stream authenticates
 * anew, so an expired token costs one retry), and given up only when no answer came in time or
 * the server answers that the lease is gone.
 */
import type { EtcdConnection, Message } from './client.js';
import { monotonicMs } from './monotonic-clock.js';

/** clientv3's retryConnWait: the pause before a broken stream is opened again, and between due checks. */
const retryConnectionWaitMs = 500;
/** How often clientv3's deadlineLoop looks for leases that went unanswered too long. */
const deadlineCheckMs = 1_000;
/** clientv3 sends the next keep-alive a third of the TTL after the last answer. */
const keepAliveTtlFraction = 3;
/** clientv3's defaultTTL: the wait for a first answer when the dial timeout is zero. */
const firstAnswerWaitDefaultMs = 5_000;

type KeepAliveStream = Awaited<ReturnType<EtcdConnection['duplex']>>;

/** The wait for the first answer: clientv3's dial timeout plus a second, or its default of five seconds when that is one. */
export function firstAnswerWaitMs(dialTimeoutMs: number): number {
  const waitMs = dialTimeoutMs + 1_000;
  return waitMs === 1_000 ? firstAnswerWaitDefaultMs : waitMs;
}

/** The keep-alive of one lease; `ended` settles once it has given up (expired, revoked or unanswered). */
export class LeaseKeeper {
  readonly ended: Promise<void>;
  private end: () => void = () => undefined;
  private stream: KeepAliveStream | undefined;
  private closed = false;
  /** When the lease counts as lost without an answer. */
  private deadline: number;
  /** When the next renewal is due; renewals go out every retryConnectionWaitMs until it is answered. */
  private nextKeepAlive: number;
  private readonly sendTimer: NodeJS.Timeout;
  private readonly deadlineTimer: NodeJS.Timeout;

  constructor(
    private readonly connection: EtcdConnection,
    private readonly lease: string,
    firstWaitMs: number,
    private readonly onAnswer: (answer: Message) => void = () => undefined,
  ) {
    const now = monotonicMs();
    this.deadline = now + firstWaitMs;
    this.nextKeepAlive = now;
    this.ended = new Promise((resolve) => (this.end = resolve));
    this.sendTimer = setInterval(() => this.sendDue(), retryConnectionWaitMs);
    this.deadlineTimer = setInterval(() => {
      if (monotonicMs() > this.deadline) this.close();
    }, deadlineCheckMs);
    void this.run();
  }

  /** Stops renewing; the lease is left to expire, as clientv3 leaves it. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sendTimer);
    clearInterval(this.deadlineTimer);
    this.stream?.cancel();
    this.end();
  }

  /** Opens streams one after the other until closed: clientv3's recvKeepAliveLoop. */
  private async run(): Promise<void> {
    while (!this.closed) {
      try {
        // Lessor streams carry WithRequireLeader, so a member without a leader ends them.
        const stream = await this.connection.duplex('Lease', 'LeaseKeepAlive', true);
        if (this.closed) {
          stream.cancel();
          return;
        }
        await this.serve(stream);
      } catch {
        // A stream that cannot be opened (no member answers, authentication failed) is tried again.
      }
      this.stream = undefined;
      if (this.closed) return;
      await new Promise((resolve) => setTimeout(resolve, retryConnectionWaitMs));
    }
  }

  /** Sends what is due on `stream` and takes its answers until it ends. */
  private serve(stream: KeepAliveStream): Promise<void> {
    this.stream = stream;
    return new Promise((resolve) => {
      stream.on('data', (answer: Message) => this.receive(answer));
      stream.on('error', () => resolve());
      stream.on('status', () => resolve());
      stream.on('end', () => resolve());
      this.sendDue();
    });
  }

  private sendDue(): void {
    if (this.closed || this.stream === undefined || monotonicMs() < this.nextKeepAlive) return;
    this.stream.write({ ID: this.lease });
  }

  private receive(answer: Message): void {
    if (this.closed || String(answer.ID) !== this.lease) return;
    const ttlSeconds = Number(answer.TTL);
    if (!(ttlSeconds > 0)) return this.close();
    const now = monotonicMs();
    this.nextKeepAlive = now + (ttlSeconds * 1000) / keepAliveTtlFraction;
    this.deadline = now + ttlSeconds * 1000;
    this.onAnswer(answer);
  }
}
