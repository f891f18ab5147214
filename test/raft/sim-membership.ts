/**
 * Membership in the simulator: the cluster's members as each simulated member folds them from its
 * committed conf changes with the member's own code (src/membership/member-map.ts: etcd's
 * apply-time check, so a refused change is consumed without touching Raft), and the checkers that
 * hold Raft to single-member changes: at most one conf change pending at a leader, a leader's
 * commit index backed by a majority of the voters its applied configuration names (so removed
 * members and learners never count), an election won by a majority of those voters, only voters
 * campaigning, and every member's Raft configuration equal to the one its applied log implies.
 */
import type { EtcdError } from '../../src/api/errors.js';
import { type ClusterMember, encodeMemberContext } from '../../src/membership/cluster-member.js';
import { MemberMap } from '../../src/membership/member-map.js';
import { type ConfChange, decodeConfChange } from '../../src/raft/conf-change.js';
import type { MemoryStorage } from '../../src/raft/storage.js';
import { type ConfState, type Entry, EntryType, type NodeId } from '../../src/raft/types.js';
import { SafetyViolation } from './sim-checkers.js';

/** A member's view of the cluster: the member's own MemberMap (members and IDs removed for good). */
export type SimMembership = MemberMap;

export function memberNamed(id: NodeId, isLearner: boolean, urlGeneration = 0): ClusterMember {
  const host = urlGeneration === 0 ? `m${id}` : `m${id}-${urlGeneration}`;
  return { id, name: `m${id}`, peerUrls: [`http://${host}:2380`], clientUrls: [], isLearner };
}

/** The bootstrap membership: every initial member a voter. */
export function initialMembership(ids: readonly NodeId[]): SimMembership {
  const map = new MemberMap();
  map.adopt({ members: ids.map((id) => memberNamed(id, false)), removed: [] });
  return map;
}

/** Applies a committed conf change as a member does (MemberMap.check, then apply); returns etcd's refusal if any. */
export function applyMembershipChange(state: SimMembership, change: ConfChange): EtcdError | undefined {
  const { memberChange, refusal } = state.check(change);
  if (refusal === undefined) state.apply(change, memberChange);
  return refusal;
}

/** The membership a sequence of applied entries implies, from the bootstrap members. */
export function membershipOf(initialIds: readonly NodeId[], applied: readonly Entry[]): SimMembership {
  const state = initialMembership(initialIds);
  for (const entry of applied)
    if (entry.type === EntryType.confChange) applyMembershipChange(state, decodeConfChange(entry.data));
  return state;
}

const byId = (a: NodeId, b: NodeId): number => (a < b ? -1 : a > b ? 1 : 0);

/** The Raft configuration a membership implies. */
export function confStateOfMembership(state: SimMembership): ConfState {
  const members = [...state.members.values()];
  return {
    voters: members
      .filter((m) => !m.isLearner)
      .map((m) => m.id)
      .sort(byId),
    learners: members
      .filter((m) => m.isLearner)
      .map((m) => m.id)
      .sort(byId),
    votersOutgoing: [],
    learnersNext: [],
    autoLeave: false,
  };
}

export function votersOf(state: SimMembership): NodeId[] {
  return [...state.members.values()].filter((m) => !m.isLearner).map((m) => m.id);
}

export function confStateText(confState: ConfState): string {
  return `voters=[${confState.voters.join(',')}] learners=[${confState.learners.join(',')}]`;
}

/** The context a proposal carries: the member added, updated or promoted (etcd's marshalled Member). */
export function contextFor(member: ClusterMember, isPromote = false): Uint8Array {
  return encodeMemberContext(member, isPromote);
}

const majority = (count: number): number => Math.floor(count / 2) + 1;

/** Read access to a member's stable log, for counting who holds an entry. */
export interface HeldLog {
  id: NodeId;
  storage: MemoryStorage;
}

/** Whether `log` durably holds entry `index` of `term` (or a snapshot past it, which holds only committed state). */
function holds(log: HeldLog, index: number, term: number): boolean {
  const storage = log.storage;
  if (index <= storage.snapshot().metadata.index) return true;
  if (index < storage.firstIndex() || index > storage.lastIndex()) return false;
  return storage.term(index) === term;
}

export class MembershipChecker {
  /** The configuration first applied at each conf change index: every member must reach the same one. */
  private readonly confAtIndex = new Map<number, { text: string; member: NodeId }>();
  /** Granted votes delivered to each candidate, by `candidate/term`. */
  private readonly grants = new Map<string, Set<NodeId>>();
  private readonly electionsChecked = new Set<string>();
  commitChecks = 0;
  electionChecks = 0;

  /** A member's Raft configuration must be the one its applied conf changes imply, and the same everywhere at one index. */
  checkConfState(member: NodeId, index: number, raftConf: ConfState, membership: SimMembership, what: string): void {
    const expected = confStateText(confStateOfMembership(membership));
    const actual = confStateText(raftConf);
    if (expected !== actual) {
      throw new SafetyViolation(
        `configuration: member ${member} ${what} at ${index} has Raft configuration ${actual}, ` +
          `but its applied log implies ${expected}`,
      );
    }
    const known = this.confAtIndex.get(index);
    if (known === undefined) this.confAtIndex.set(index, { text: expected, member });
    else if (known.text !== expected) {
      throw new SafetyViolation(
        `configuration: member ${member} applied ${expected} at ${index}, member ${known.member} applied ${known.text}`,
      );
    }
  }

  /** A leader's new commit index must be held by a majority of the voters of its applied configuration. */
  checkCommitQuorum(
    leader: NodeId,
    term: number,
    commit: number,
    voters: readonly NodeId[],
    logs: readonly HeldLog[],
  ): void {
    this.commitChecks += 1;
    let holders = 0;
    const names: NodeId[] = [];
    for (const id of voters) {
      const log = logs.find((l) => l.id === id);
      if (id === leader || (log !== undefined && holds(log, commit, term))) {
        holders += 1;
        names.push(id);
      }
    }
    if (holders < majority(voters.length)) {
      throw new SafetyViolation(
        `commit quorum: leader ${leader} of term ${term} committed ${commit}, held only by voters ` +
          `[${names.join(',')}] of [${voters.join(',')}]`,
      );
    }
  }

  voteGranted(candidate: NodeId, term: number, voter: NodeId): void {
    const key = `${candidate}/${term}`;
    let set = this.grants.get(key);
    if (!set) this.grants.set(key, (set = new Set()));
    set.add(voter);
  }

  /** An election is won by the votes of a majority of the winner's voters, the winner one of them. */
  checkElection(leader: NodeId, term: number, voters: readonly NodeId[]): void {
    const key = `${leader}/${term}`;
    if (this.electionsChecked.has(key)) return;
    this.electionsChecked.add(key);
    this.electionChecks += 1;
    if (!voters.includes(leader)) {
      throw new SafetyViolation(`election: ${leader} leads term ${term} but is no voter in [${voters.join(',')}]`);
    }
    const granted = this.grants.get(key) ?? new Set<NodeId>();
    const counted = voters.filter((id) => id === leader || granted.has(id));
    if (counted.length < majority(voters.length)) {
      throw new SafetyViolation(
        `election: ${leader} leads term ${term} with votes of [${counted.join(',')}] (granted by ` +
          `[${[...granted].join(',')}]) of voters [${voters.join(',')}]`,
      );
    }
  }

  /** Only a voter of its own configuration asks for votes. */
  checkCampaigner(member: NodeId, voters: readonly NodeId[]): void {
    if (!voters.includes(member)) {
      throw new SafetyViolation(`election: ${member} asks for votes but is no voter in [${voters.join(',')}]`);
    }
  }

  /**
   * At most one conf change pending: a leader appends a conf change only when every earlier one
   * in its log is applied. `log` yields the leader's entries in (appliedIndex, index).
   */
  checkOnePending(leader: NodeId, index: number, appliedIndex: number, earlier: readonly Entry[]): void {
    const pending = earlier.find((e) => e.index > appliedIndex && e.index < index && e.type === EntryType.confChange);
    if (pending !== undefined) {
      throw new SafetyViolation(
        `conf change: leader ${leader} appended a conf change at ${index} while the one at ${pending.index} ` +
          `was not applied (applied ${appliedIndex})`,
      );
    }
  }
}
