/**
 * What the dashboard shows of the cluster, as one member sees it: its own view (role, term,
 * leader, commit and applied index, database size, request counts, recent role transitions) and
 * each peer's, asked over the peer API (GET /members/dashboard). Nothing here runs unless an open
 * dashboard asks for it; a peer that does not answer in dashboardPeerCallMsMax is unreachable.
 */
import { dashboardPeerCallMsMax } from '../../src/lib/limits.js';
import type { ClusterMember } from '../../src/membership/cluster-member.js';
import { formatId } from '../../src/membership/ids.js';
import type { RaftRole } from '../../src/raft/types.js';
import { peerApiPaths } from '../peer/api.js';
import type { RaftTransport } from '../peer/links.js';
import type { RoleTransition } from './role-timeline.js';

/** Requests served so far, from the counters /metrics reports. */
export interface RequestCounts {
  /** etcd_mvcc_put_total, etcd_mvcc_range_total, etcd_mvcc_delete_total, etcd_mvcc_txn_total. */
  put: number;
  range: number;
  delete: number;
  txn: number;
  /** grpc_server_started_total over every method. */
  grpc: number;
}

/** One member's own view; IDs in etcd's hex. */
export interface MemberView {
  id: string;
  name: string;
  role: RaftRole;
  term: number;
  leader: string;
  commit: number;
  applied: number;
  revision: number;
  dbSizeBytes: number;
  dbSizeInUseBytes: number;
  isLearner: boolean;
  requests: RequestCounts;
  /** Wall-clock milliseconds when the view was taken. */
  atMs: number;
  transitions: readonly RoleTransition[];
}

/** A member of the cluster list and what it answered; `view` is absent when it did not. */
export interface MemberRow {
  id: string;
  name: string;
  clientUrls: string[];
  reachable: boolean;
  view?: MemberView;
  /** Why it is unreachable, in the transport's words. */
  error?: string;
}

export interface ClusterView {
  /** The member that gathered this view. */
  observer: string;
  atMs: number;
  members: MemberRow[];
}

export interface ClusterViewParts {
  memberId: bigint;
  members: () => Iterable<ClusterMember>;
  localView: () => MemberView;
  transport: Pick<RaftTransport<unknown>, 'call'>;
}

/** Every member's row: this member's own view, and each peer's answer or why it gave none. */
export async function gatherClusterView(parts: ClusterViewParts): Promise<ClusterView> {
  const members = [...parts.members()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const rows = await Promise.all(members.map((member) => memberRow(parts, member)));
  return { observer: formatId(parts.memberId), atMs: Date.now(), members: rows };
}

async function memberRow(parts: ClusterViewParts, member: ClusterMember): Promise<MemberRow> {
  const row = { id: formatId(member.id), name: member.name, clientUrls: member.clientUrls };
  if (member.id === parts.memberId) return { ...row, reachable: true, view: parts.localView() };
  try {
    const call = { method: 'GET' as const, path: peerApiPaths.dashboard, body: '' };
    const answer = await parts.transport.call(member.id, call, dashboardPeerCallMsMax);
    if (answer.status !== 200) return { ...row, reachable: false, error: `status ${answer.status}` };
    return { ...row, reachable: true, view: JSON.parse(answer.body) as MemberView };
  } catch (error) {
    return { ...row, reachable: false, error: (error as Error).message };
  }
}

/** Requests per second between two views of one member; undefined without an earlier view. */
export function requestRates(before: MemberView | undefined, after: MemberView): RequestCounts | undefined {
  if (before === undefined || after.atMs <= before.atMs) return undefined;
  const seconds = (after.atMs - before.atMs) / 1000;
  const rate = (key: keyof RequestCounts) => Math.max(0, after.requests[key] - before.requests[key]) / seconds;
  return { put: rate('put'), range: rate('range'), delete: rate('delete'), txn: rate('txn'), grpc: rate('grpc') };
}
