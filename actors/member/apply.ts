/**
 * etcd's apply.go: committed entries, in log order, applied to the MVCC store and the lessor
 * (proposals), to the membership (conf changes and member attributes), and answered to the
 * proposal waiting on each. It owns the applied index, which moves by exactly one per entry, or
 * jumps to the index of an installed snapshot; Raft's Ready handling (raft-loop.ts) calls it once
 * an entry is durable, and nothing else writes the applied state.
 */
import { errors, EtcdError } from '../../src/api/errors.js';
import { decodeProposal, mayBeMembershipProposal } from '../../src/api/proposal-codec.js';
import type { ProposalBody, ProposalResult } from '../../src/api/types.js';
import { AlarmType, type AlarmChange } from '../../src/alarm/alarm-store.js';
import type { AuthInfo, AuthRequest } from '../../src/auth/types.js';
import { applyLeaseProposal } from '../../src/lease/apply.js';
import type { TokenHooks } from '../../src/auth/auth-store.js';
import { checkProposal } from '../../src/auth/enforce.js';
import { assert, unreachable } from '../../src/lib/assert.js';
import { slowApplyMsDefault } from '../../src/lib/limits.js';
import type { ProposalWaiters } from '../../src/server/proposal-waiters.js';
import { type Entry, EntryType, RaftRole } from '../../src/raft/types.js';
import type { RawNode } from '../../machines/raw-node.js';
import { failpoint, failpointsOn } from '../shared/failpoints.js';
import { leaseClockMs } from './clock.js';
import type { KeySpace } from './key-space.js';
import type { Membership } from './membership.js';
import { leaseCostBytes, putCostBytes, txnCostBytes, type BackendQuota } from './quota.js';

/** What a proposal's waiter learns once its entry is applied. */
export interface Applied {
  result: ProposalResult;
  /** The store's revision right after this entry was applied (its response header's revision). */
  revision: number;
}

/** What the applier needs from the rest of the member, each given at construction. */
export interface ApplierParts {
  memberId: bigint;
  keySpace: Pick<KeySpace, 'store' | 'lessor' | 'alarms' | 'auth' | 'backend'>;
  /** The member's tokens, told of authentications and of users losing theirs. */
  tokens: TokenHooks;
  proposals: ProposalWaiters<Applied>;
  membership: Pick<Membership, 'applyConfChange' | 'applyMemberAttributes' | 'applyClusterVersion'>;
  raft: Pick<RawNode, 'status'>;
  /** How long a new leader's lessor extends every lease when it starts timing them. */
  promoteExtendMs: number;
  /** This member's backend quota, which a write applied past it trips (etcd's quotaApplierV3). */
  quota: Pick<BackendQuota, 'exceeded'>;
  /** Proposes this member's NOSPACE alarm (a write applied past the quota). */
  raiseNoSpace: () => void;
  /** Told of every applied alarm change that raised the first or disarmed the last of its type. */
  onAlarmTransition: (change: AlarmChange) => void;
  /** --experimental-warning-apply-duration: a proposal whose apply takes longer is slow. */
  warningApplyMs?: number;
  /** Told of each slow apply (etcd logs "apply request took too long"). */
  onSlowApply?: (tookMs: number, warningApplyMs: number, entry: Entry) => void;
  /** Told when a leader's empty entry is applied: the leader then looks at the cluster version (etcd's forceVersionC). */
  onEmptyEntry?: () => void;
}

/** What etcd's corrupt applier refuses once CORRUPT stands. */
const corruptRefused: ReadonlySet<ProposalBody['type']> = new Set([
  'put',
  'deleteRange',
  'txn',
  'compaction',
  'leaseGrant',
  'leaseRevoke',
]);

/** What a proposal adds to the backend as etcd's quota counts it: puts, txns with puts, lease grants. */
function writeCostBytes(body: ProposalBody): number {
  if (body.type === 'put') return putCostBytes(body.put);
  if (body.type === 'txn') return txnCostBytes(body.txn);
  if (body.type === 'leaseGrant') return leaseCostBytes;
  return 0;
}

export class Applier {
  private applied: number;
  /** Proposals whose apply took longer than --experimental-warning-apply-duration (etcd_server_slow_apply_total). */
  slowApplies = 0;

  /** `appliedIndex`: the last entry the state already holds (the snapshot's, or 0). */
  constructor(
    private readonly parts: ApplierParts,
    appliedIndex: number,
  ) {
    assert(
      Number.isSafeInteger(appliedIndex) && appliedIndex >= 0,
      () => `the applied index starts at a non-negative integer, not ${appliedIndex}`,
    );
    this.applied = appliedIndex;
  }

  /** The index of the last entry applied. */
  get index(): number {
    return this.applied;
  }

  /** Applies committed entries in order; each must follow the last one applied. */
  applyEntries(entries: readonly Entry[]): void {
    const { store } = this.parts.keySpace;
    for (const entry of entries) {
      assert(
        entry.index === this.applied + 1,
        () => `applying entry ${entry.index} right after entry ${this.applied}; entries apply one index at a time`,
      );
      if (entry.type === EntryType.normal && entry.data.length > 0) {
        const startedAt = performance.now();
        if (failpointsOn) failpoint('beforeApplyEntry');
        this.applyProposal(entry);
        this.noteApplyTime(performance.now() - startedAt, entry);
      } else {
        if (entry.type === EntryType.confChange) this.parts.membership.applyConfChange(entry);
        if (entry.type === EntryType.normal) {
          this.promoteLessorIfLeading(entry);
          this.parts.onEmptyEntry?.();
        }
        // Entries that do not touch the key space still move the applied index, so a restart
        // does not replay them into the store.
        if (entry.index > store.consistentIndex) store.recordApplied(entry.index, entry.term);
      }
      this.applied = entry.index;
    }
  }

  /** Applies a proposal body to the part that owns it; refusals are thrown as EtcdError. */
  private applyBody(entry: Entry, caller: AuthInfo | undefined, body: ProposalBody): ProposalResult {
    const { store, lessor } = this.parts.keySpace;
    switch (body.type) {
      case 'memberAttributes':
      case 'clusterVersion':
        store.recordApplied(entry.index, entry.term);
        return { type: body.type };
      case 'auth':
        return this.applyAuth(entry, caller, body.auth);
      case 'alarm':
        return this.applyAlarm(entry, body.alarm);
      case 'leaseGrant':
      case 'leaseRevoke':
      case 'leaseCheckpoint':
        return applyLeaseProposal(lessor, store, entry, body, leaseClockMs());
      case 'put':
      case 'deleteRange':
      case 'txn':
        return store.apply(entry.index, entry.term, body);
      case 'compaction':
        return this.applyCompaction(entry, body);
      default:
        return unreachable(body);
    }
  }

  /** A Compact, between the failpoints etcd puts around committing the scheduled compaction. */
  private applyCompaction(entry: Entry, body: Extract<ProposalBody, { type: 'compaction' }>): ProposalResult {
    if (failpointsOn) failpoint('compactBeforeCommitScheduledCompact');
    const result = this.parts.keySpace.store.apply(entry.index, entry.term, body);
    if (failpointsOn) failpoint('compactAfterCommitScheduledCompact');
    return result;
  }

  /** etcd's Alarm apply: the store changes, the backend keeps the change with the entry's index. */
  private applyAlarm(entry: Entry, request: Parameters<KeySpace['alarms']['apply']>[0]): ProposalResult {
    const { store, alarms, backend } = this.parts.keySpace;
    const change = alarms.apply(request);
    if (change.stored !== undefined) {
      const stored = change.stored;
      backend.write({
        puts: [],
        deletes: [],
        meta: {},
        alarms: 'put' in stored ? { puts: [stored.put], deletes: [] } : { puts: [], deletes: [stored.delete] },
      });
    }
    store.recordApplied(entry.index, entry.term);
    if (change.transition !== undefined) this.parts.onAlarmTransition(change);
    return { type: 'alarm', alarm: { alarms: change.alarms } };
  }

  /**
   * The refusal etcd's capped applier (NOSPACE raised: puts, txns with puts, lease grants) or
   * corrupt applier (CORRUPT raised: every write) gives `body`, if any.
   */
  private cappedRefusal(body: ProposalBody): EtcdError | undefined {
    const { alarms } = this.parts.keySpace;
    if (alarms.has(AlarmType.corrupt) && corruptRefused.has(body.type)) return errors.corrupt();
    if (alarms.has(AlarmType.noSpace) && writeCostBytes(body) > 0) return errors.noSpace();
    return undefined;
  }

  /** The state now holds everything up to an installed snapshot's index. */
  jumpTo(snapshotIndex: number): void {
    assert(
      snapshotIndex > this.applied,
      () =>
        `a snapshot at index ${snapshotIndex} installed over applied index ${this.applied}; a snapshot only moves forward`,
    );
    this.applied = snapshotIndex;
  }

  /** A member that stops leading stops timing leases; the next leader's lessor takes over. */
  leadershipChanged(role: RaftRole): void {
    const { lessor } = this.parts.keySpace;
    if (role !== RaftRole.leader && lessor.isPrimary) lessor.demote();
  }

  /** A new leader's empty entry, once applied, is where its lessor starts timing leases (as etcd). */
  private promoteLessorIfLeading(entry: Entry): void {
    const { lessor } = this.parts.keySpace;
    const raftStatus = this.parts.raft.status();
    if (raftStatus.role !== RaftRole.leader || entry.term !== raftStatus.term || lessor.isPrimary) return;
    lessor.promote(leaseClockMs(), this.parts.promoteExtendMs);
  }

  /** Counts (and reports) a proposal whose apply took longer than --experimental-warning-apply-duration. */
  private noteApplyTime(tookMs: number, entry: Entry): void {
    const warningApplyMs = this.parts.warningApplyMs ?? slowApplyMsDefault;
    if (tookMs <= warningApplyMs) return;
    this.slowApplies++;
    this.parts.onSlowApply?.(tookMs, warningApplyMs, entry);
  }

  private applyProposal(entry: Entry): void {
    const { store, auth } = this.parts.keySpace;
    const { proposals } = this.parts;
    // An entry replayed after a restart that the store already holds changes nothing, and nobody
    // waits for it; only member attributes and the cluster version, which live with the
    // membership, are applied again. Skipping the decode keeps a restart over a long WAL tail short.
    if (entry.index <= store.consistentIndex && proposals.size === 0 && !mayBeMembershipProposal(entry.data)) return;
    const envelope = decodeProposal(entry.data);
    const waiter = envelope.origin === this.parts.memberId ? proposals.take(envelope.id) : undefined;
    const body = envelope.body;
    // Member attributes and the cluster version live with the membership (and its snapshots), not
    // in the backend: replayed entries set them again, as etcd's v2 store replays them.
    if (body.type === 'memberAttributes') this.parts.membership.applyMemberAttributes(body.memberAttributes);
    if (body.type === 'clusterVersion') this.parts.membership.applyClusterVersion(body.clusterVersion);
    if (entry.index <= store.consistentIndex) {
      waiter?.reject(errors.stopped());
      return;
    }
    const refusal = this.cappedRefusal(body);
    if (refusal !== undefined) {
      // etcd's capped and corrupt appliers: the entry is consumed and the request refused.
      store.recordApplied(entry.index, entry.term);
      waiter?.reject(refusal);
      return;
    }
    const overQuota = this.parts.quota.exceeded(writeCostBytes(body));
    let result: ProposalResult;
    try {
      // With auth enabled, a write is checked again against the store as it is now (as etcd's
      // auth applier does): the check before proposing may have seen an older auth revision.
      if (auth.enabled) this.checkPermission(entry, envelope.caller, body);
      result = this.applyBody(entry, envelope.caller, body);
    } catch (error) {
      if (!(error instanceof EtcdError)) throw error;
      waiter?.reject(error);
      return;
    }
    if (overQuota) {
      // etcd applies a write that passed the front door but finds the quota used up, answers it
      // with "database space exceeded" and raises this member's alarm.
      if (!this.parts.keySpace.alarms.has(AlarmType.noSpace)) this.parts.raiseNoSpace();
      waiter?.reject(errors.noSpace());
      return;
    }
    waiter?.resolve({ result, revision: store.currentRevision });
  }

  /** Refusals still consume their entry, recorded as applied so a restart does not redo it. */
  private checkPermission(entry: Entry, caller: AuthInfo | undefined, body: ProposalBody): void {
    const { store, lessor, auth } = this.parts.keySpace;
    try {
      checkProposal(auth, caller, body, lessor);
    } catch (error) {
      if (error instanceof EtcdError) store.recordApplied(entry.index, entry.term);
      throw error;
    }
  }

  /** An Auth service request: a change is written to the backend with the entry's index. */
  private applyAuth(entry: Entry, caller: AuthInfo | undefined, request: AuthRequest): ProposalResult {
    const { store, auth, backend } = this.parts.keySpace;
    try {
      const { response, changed } = auth.apply(request, caller, entry.index, this.parts.tokens);
      if (changed) backend.write({ puts: [], deletes: [], meta: {}, auth: auth.encode() });
      return { type: 'auth', auth: response };
    } finally {
      store.recordApplied(entry.index, entry.term);
    }
  }
}
