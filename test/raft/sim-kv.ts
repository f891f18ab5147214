/**
 * The real key space under the simulator: each simulated member applies its committed entries to
 * its own src/mvcc KvStore (over the in-memory backend twin), decoding them with the proposal
 * codec the member uses (src/api/proposal-codec.ts), as actors/member/apply.ts does for puts,
 * deletes, txns and compactions. Snapshots carry the backend's records as bytes and a restore
 * opens a fresh store on them (KvStore.open, the path a restart takes). KvChecker holds every
 * member to the same revision at each applied index and the same HashKV hash where hashed.
 */
import { EtcdError } from '../../src/api/errors.js';
import { decodeKeyValue, encodeKeyValue } from '../../src/api/key-value-codec.js';
import { decodeProposal, encodeProposal } from '../../src/api/proposal-codec.js';
import {
  CompareResult,
  CompareTarget,
  type Compare,
  type KvProposalBody,
  type RequestOp,
} from '../../src/api/types.js';
import type { Prng } from '../../src/lib/prng.js';
import { type BackendMeta, MemoryBackend, type StoredKeyValue } from '../../src/mvcc/backend.js';
import { KvStore } from '../../src/mvcc/kv-store.js';
import type { Revision } from '../../src/mvcc/revision.js';
import { type Entry, EntryType, type NodeId } from '../../src/raft/types.js';
import { SafetyViolation, isKvProposal } from './sim-checkers.js';

const kvKeys = ['k0', 'k1', 'k2', 'k3', 'k4'];
/** Applied indexes at which every member's HashKV is compared (hashing is a scan of the store). */
const hashEveryIndexes = 16;

const bytes = (value: string): Uint8Array => new TextEncoder().encode(value);

/** One stored revision as a snapshot image carries it: main, sub, tombstone, mvccpb.KeyValue base64. */
type ImageRow = [main: number, sub: number, tombstone: boolean, kv: string];

interface KvImage {
  meta: BackendMeta;
  rows: ImageRow[];
}

export class SimKv {
  private constructor(
    private readonly backend: MemoryBackend,
    readonly store: KvStore,
  ) {}

  static empty(): SimKv {
    const backend = new MemoryBackend();
    return new SimKv(backend, KvStore.open(backend));
  }

  /** Opens a fresh store on a snapshot image's records, as a member restores from a received database. */
  static fromImage(image: string): SimKv {
    const parsed = JSON.parse(image) as KvImage;
    const backend = new MemoryBackend();
    const puts: { rev: Revision; stored: StoredKeyValue }[] = parsed.rows.map(([main, sub, tombstone, kv]) => ({
      rev: { main, sub },
      stored: { kv: decodeKeyValue(new Uint8Array(Buffer.from(kv, 'base64'))), tombstone },
    }));
    backend.write({ puts, deletes: [], meta: parsed.meta });
    return new SimKv(backend, KvStore.open(backend));
  }

  /** The backend's records and meta as text, for a snapshot's payload. */
  image(): string {
    const rows: ImageRow[] = [];
    this.backend.scan({ main: 0, sub: 0 }, (rev, stored) => {
      rows.push([rev.main, rev.sub, stored.tombstone, Buffer.from(encodeKeyValue(stored.kv)).toString('base64')]);
    });
    return JSON.stringify({ meta: this.backend.readMeta(), rows } satisfies KvImage);
  }

  /**
   * Applies one committed entry as the member's applier does: a key-space proposal goes to the
   * store (a refused one still consumes its index), anything else only moves the applied index.
   */
  apply(entry: Entry): void {
    if (entry.index <= this.store.consistentIndex) return; // Already in the store (replayed after a restart).
    if (entry.type === EntryType.normal && isKvProposal(entry.data)) {
      const body = decodeProposal(entry.data).body as KvProposalBody;
      try {
        this.store.apply(entry.index, entry.term, body);
      } catch (error) {
        if (!(error instanceof EtcdError)) throw error;
      }
      return;
    }
    this.store.recordApplied(entry.index, entry.term);
  }

  hash(): number {
    return this.store.hashKV(0).hash;
  }
}

interface IndexRecord {
  revision: number;
  member: NodeId;
  hash?: number;
}

/** Every member's store agrees with every other's at each applied index. */
export class KvChecker {
  private readonly atIndex = new Map<number, IndexRecord>();
  hashChecks = 0;
  kvEntriesApplied = 0;

  /** After `member` applied `index` (or installed a snapshot at it): same revision, same hash where hashed. */
  check(member: NodeId, kv: SimKv, index: number, forceHash: boolean): void {
    const revision = kv.store.currentRevision;
    const hashed = forceHash || index % hashEveryIndexes === 0;
    const hash = hashed ? kv.hash() : undefined;
    const known = this.atIndex.get(index);
    if (known === undefined) {
      this.atIndex.set(index, { revision, member, ...(hash === undefined ? {} : { hash }) });
      return;
    }
    if (known.revision !== revision) {
      throw new SafetyViolation(
        `key space: member ${member} is at revision ${revision} after index ${index}, ` +
          `member ${known.member} was at ${known.revision}`,
      );
    }
    if (hash === undefined) return;
    if (known.hash === undefined) {
      known.hash = hash;
      return;
    }
    this.hashChecks += 1;
    if (known.hash !== hash) {
      throw new SafetyViolation(
        `key space: member ${member} has HashKV ${hash} at index ${index} (revision ${revision}), ` +
          `member ${known.member} had ${known.hash}`,
      );
    }
  }
}

/** A random put, delete, txn or compaction against the simulator's few keys, encoded as a member proposes it. */
export function randomKvProposal(prng: Prng, origin: NodeId, id: number, currentRevision: number): Uint8Array {
  const key = bytes(prng.pick(kvKeys));
  const value = bytes(`v${id}`);
  const roll = prng.nextInt(10);
  let body: KvProposalBody;
  if (roll < 4) {
    body = { type: 'put', put: putOf(key, value) };
  } else if (roll < 6) {
    // A single key, or a range from it to the end of the simulator's keys.
    const rangeEnd = prng.chance(0.5) ? new Uint8Array(0) : bytes('k9');
    body = { type: 'deleteRange', deleteRange: { key, rangeEnd, prevKv: prng.chance(0.5) } };
  } else if (roll < 9) {
    body = { type: 'txn', txn: { compare: [randomCompare(prng, key)], success: [putOp(key, value)], failure: [] } };
    if (prng.chance(0.5))
      body.txn.failure.push({ type: 'deleteRange', deleteRange: { key, rangeEnd: new Uint8Array(0), prevKv: false } });
  } else {
    // Sometimes past the current revision, which the store refuses (the entry is still consumed).
    body = {
      type: 'compaction',
      compaction: { revision: Math.max(1, currentRevision - prng.nextInt(8) + 1), physical: false },
    };
  }
  return encodeProposal({ origin, id, body });
}

function putOf(key: Uint8Array, value: Uint8Array) {
  return { key, value, lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false };
}

function putOp(key: Uint8Array, value: Uint8Array): RequestOp {
  return { type: 'put', put: putOf(key, value) };
}

function randomCompare(prng: Prng, key: Uint8Array): Compare {
  const target = prng.pick([CompareTarget.version, CompareTarget.mod, CompareTarget.value]);
  return {
    result: prng.pick([CompareResult.equal, CompareResult.greater, CompareResult.less, CompareResult.notEqual]),
    target,
    key,
    rangeEnd: new Uint8Array(0),
    version: prng.nextInt(4),
    createRevision: 0,
    modRevision: prng.nextInt(40),
    value: bytes(`v${prng.nextInt(40)}`),
    lease: 0n,
  };
}
