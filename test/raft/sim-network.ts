/**
 * The simulator's fake network: every message gets a delivery tick, may be dropped or
 * duplicated on the way, and is lost when its link is cut at delivery time. Links are directed,
 * so a partition can be one-way. Messages due at the same tick arrive in a random order.
 */
import type { Prng } from '../../src/lib/prng.js';
import type { Message, NodeId } from '../../src/raft/types.js';

/** How hostile the network is; the liveness phase swaps in a calm profile. */
export interface NetworkProfile {
  dropProbability: number;
  duplicateProbability: number;
  /** Most messages arrive within [0, delayTicksMax] ticks... */
  delayTicksMax: number;
  /** ...and this share is held back longer, up to `longDelayTicksMax`, which reorders across terms. */
  longDelayProbability: number;
  longDelayTicksMax: number;
}

export const calmNetwork: NetworkProfile = {
  dropProbability: 0,
  duplicateProbability: 0,
  delayTicksMax: 1,
  longDelayProbability: 0,
  longDelayTicksMax: 0,
};

export interface NetworkCounters {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  cut: number;
  longDelayed: number;
}

interface InFlight {
  message: Message;
  deliverTick: number;
}

export class FakeNetwork {
  profile: NetworkProfile;
  private inFlight: InFlight[] = [];
  /** Cut links as `from>to`; a message on a cut link is lost at delivery. */
  private readonly cut = new Set<string>();
  readonly counters: NetworkCounters = { sent: 0, delivered: 0, dropped: 0, duplicated: 0, cut: 0, longDelayed: 0 };

  constructor(
    private readonly prng: Prng,
    profile: NetworkProfile,
  ) {
    this.profile = profile;
  }

  /** Queues a message for delivery; it may be dropped or duplicated right here. */
  send(message: Message, nowTick: number): 'queued' | 'dropped' {
    this.counters.sent += 1;
    if (this.prng.chance(this.profile.dropProbability)) {
      this.counters.dropped += 1;
      return 'dropped';
    }
    this.inFlight.push({ message, deliverTick: nowTick + this.delayTicks() });
    if (this.prng.chance(this.profile.duplicateProbability)) {
      this.counters.duplicated += 1;
      this.inFlight.push({ message, deliverTick: nowTick + this.delayTicks() });
    }
    return 'queued';
  }

  /** Removes and returns the messages due by `nowTick`, shuffled. */
  takeDue(nowTick: number): Message[] {
    const due: InFlight[] = [];
    const later: InFlight[] = [];
    for (const item of this.inFlight) (item.deliverTick <= nowTick ? due : later).push(item);
    if (due.length === 0) return [];
    this.inFlight = later;
    const messages = due.map((item) => item.message);
    shuffle(this.prng, messages);
    return messages;
  }

  hasDue(nowTick: number): boolean {
    return this.inFlight.some((item) => item.deliverTick <= nowTick);
  }

  /** Whether `message` may cross its link now; counts it as cut otherwise. */
  admits(message: Message): boolean {
    if (!this.cut.has(linkKey(message.from, message.to))) {
      this.counters.delivered += 1;
      return true;
    }
    this.counters.cut += 1;
    return false;
  }

  /** Drops everything addressed to `id` (its process is gone); returns what was dropped. */
  discardTo(id: NodeId): Message[] {
    const lost = this.inFlight.filter((item) => item.message.to === id).map((item) => item.message);
    this.inFlight = this.inFlight.filter((item) => item.message.to !== id);
    return lost;
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(linkKey(from, to));
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cut.has(linkKey(from, to));
  }

  heal(): void {
    this.cut.clear();
  }

  cutCount(): number {
    return this.cut.size;
  }

  inFlightCount(): number {
    return this.inFlight.length;
  }

  private delayTicks(): number {
    if (this.profile.longDelayProbability > 0 && this.prng.chance(this.profile.longDelayProbability)) {
      this.counters.longDelayed += 1;
      return this.profile.delayTicksMax + 1 + this.prng.nextInt(Math.max(1, this.profile.longDelayTicksMax));
    }
    return this.prng.nextInt(this.profile.delayTicksMax + 1);
  }
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}>${to}`;
}

/** Fisher-Yates with the simulation's generator, so the order replays from the seed. */
export function shuffle<T>(prng: Prng, items: T[]): void {
  for (let i = items.length - 1; i > 0; i -= 1) {
    const j = prng.nextInt(i + 1);
    const a = items[i] as T;
    items[i] = items[j] as T;
    items[j] = a;
  }
}
