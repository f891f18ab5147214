/**
 * Opening a member's data dir, as etcd's bootstrap does: the WAL (read by its own thread while the
 * backend is opened here), the snapshot it names, the in-memory Raft log rebuilt from both, the
 * key space, the Raft node and the peer transport. A new cluster's first entries are written
 * here; a member joining a running cluster (--initial-cluster-state existing) first learns its
 * identity from the members. Everything opened is handed to member.ts, which builds the parts.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { MessagePort, Worker } from 'node:worker_threads';
import type { MemberConfig } from '../../src/config/config.js';
import { verifyBootstrap, verifyJoinExisting } from '../../src/config/initial-cluster.js';
import { dnsPeerUrlResolver } from '../../src/config/peer-url-resolver.js';
import { goDurationString } from '../../src/lib/go-duration.js';
import { encodeMemberContext, sameUrls, type ClusterMember } from '../../src/membership/cluster-member.js';
import { clusterIdFor, formatId, memberIdFor } from '../../src/membership/ids.js';
import { ConfChangeType, encodeConfChange } from '../../src/raft/conf-change.js';
import { MemoryStorage } from '../../src/raft/storage.js';
import { type Entry, EntryType, type HardState } from '../../src/raft/types.js';
import { decodeMembership, loadSnapFile, type SnapshotMembership } from '../../src/snap/snap-file.js';
import { Wal } from '../../src/wal/wal.js';
import type { WalState } from '../../src/wal/reader.js';
import { forceNewClusterLog } from '../../src/membership/force-new-cluster.js';
import { memberDataPaths, type MemberPaths } from '../../src/lib/paths.js';
import { RawNode } from '../../machines/raw-node.js';
import type { MachineInspect } from '../../machines/raft-role.js';
import type { RaftTransport } from '../peer/links.js';
import { MessagePortTransport } from '../peer/port-transport.js';
import { fetchClusterFromPeers, PeerTransport } from '../peer/ws-transport.js';
import type { Logger } from '../shared/logger.js';
import { WalClient } from '../wal/client.js';
import { electionTicksFor } from './clock.js';
import { KeySpace } from './key-space.js';
import { recoverSnapshotInstall, snapshotInstallPending } from './snapshot-install.js';

/** Rounds of asking the --initial-cluster peers for the member list when joining. */
const joinFetchAttemptsMax = 10;
/** Pause between those rounds, and each request's timeout. */
const joinFetchRetryMs = 500;
const joinFetchTimeoutMs = 1_000;

/** The identity a member runs with, decided at bootstrap and kept in the WAL metadata. */
export interface MemberIdentity {
  memberId: bigint;
  clusterId: bigint;
}

export type { MemberPaths };

/** etcd's on-disk layout: <data-dir>/member/{wal,snap/db}. */
export function memberPaths(config: MemberConfig): MemberPaths {
  return memberDataPaths(config.dataDir, config.walDir);
}

/** Everything a started member is built from; the transport is created but not started. */
export interface OpenedMember {
  paths: MemberPaths;
  /** This start bootstraps a new cluster (no WAL before, not joining an existing cluster). */
  newCluster: boolean;
  identity: MemberIdentity;
  electionTicks: number;
  wal: WalClient;
  storage: MemoryStorage;
  raft: RawNode;
  keySpace: KeySpace;
  transport: RaftTransport<unknown>;
  /** The membership the WAL's snapshot records, when there is a snapshot. */
  snapshotMembership: SnapshotMembership | undefined;
  snapshotIndex: number;
  /** The members a joining member was told of; it talks to them until its log names them. */
  joinPeers: ClusterMember[];
  /** The line to log once the member runs: how it started and from what. */
  startLog: { fields: Record<string, unknown>; message: string };
  /** True when the member started from a WAL it had (etcd's memberInitialized), not bootstrapped or joined. */
  restarted: boolean;
  /** Sees the member's machines' inspection events (--inspect-url); undefined when nothing inspects them. */
  inspect: MachineInspect | undefined;
}

/**
 * etcd's checks of --initial-cluster, made only while the member has no WAL (a restarted member
 * keeps the membership its log holds): it must name this member, list no peer URL twice, and, for
 * a new cluster, give this member the peer URLs it advertises (host names resolved).
 */
async function verifyInitialCluster(config: MemberConfig, logger: Logger): Promise<void> {
  if (config.initialClusterState === 'existing') {
    verifyJoinExisting(config.name, config.initialCluster);
    return;
  }
  const resolver = dnsPeerUrlResolver((line) => {
    const fields: Record<string, string> = { url: line.url, host: line.host };
    if (line.resolvedAddr !== undefined) fields['resolved-addr'] = line.resolvedAddr;
    if (line.retryIntervalMs !== undefined) fields['retry-interval'] = goDurationString(line.retryIntervalMs * 1e6);
    if (line.error !== undefined) fields.error = line.error;
    logger[line.level](fields, line.message);
  });
  await verifyBootstrap(config.name, config.initialCluster, config.initialAdvertisePeerUrls, resolver);
}

/** Opens (or bootstraps, or joins) the member's data dir; nothing runs yet. */
export async function openMember(
  config: MemberConfig,
  logger: Logger,
  peerPorts?: Map<bigint, MessagePort>,
  walThread?: Worker,
  inspect?: MachineInspect,
): Promise<OpenedMember> {
  const paths = memberPaths(config);
  mkdirSync(join(paths.memberDir, 'snap'), { recursive: true });
  if (!Wal.exists(paths.walDir)) await verifyInitialCluster(config, logger);
  const initialMembers = initialClusterMembers(config);
  // A member joining a running cluster learns its ID and the cluster's from the members (etcd's
  // --initial-cluster-state existing); its log then comes from the leader, not from bootstrap.
  const joined =
    !Wal.exists(paths.walDir) && config.initialClusterState === 'existing'
      ? await joinExistingCluster(config, logger)
      : undefined;
  const self = config.initialCluster.find((member) => member.name === config.name);
  const bootIdentity: MemberIdentity = joined?.identity ?? {
    memberId: memberIdFor(self?.peerUrls ?? config.initialAdvertisePeerUrls, config.initialClusterToken),
    clusterId: clusterIdFor(initialMembers.map((member) => member.id)),
  };
  const walOpening = WalClient.open(paths.walDir, {
    metadata: bootIdentity,
    log: (message: string) => logger.warn({ 'wal-dir': paths.walDir }, message),
    thread: walThread,
    maxWals: config.maxWals,
    unsafeNoFsync: config.unsafeNoFsync,
  });
  // The key space is rebuilt from the backend here while the WAL thread reads the log, unless a
  // received snapshot database waits to be installed: the WAL's snapshot decides that first.
  walOpening.catch(() => undefined); // its error is thrown by the await below
  const electionTicks = electionTicksFor(config);
  let keySpace = snapshotInstallPending(paths.snapDir)
    ? undefined
    : KeySpace.open(paths.backendPath, config, electionTicks);
  const { client: wal, state, created: fresh } = await walOpening;
  const identity: MemberIdentity = fresh
    ? bootIdentity
    : { memberId: state.metadata.memberId, clusterId: state.metadata.clusterId };
  const storage = new MemoryStorage();
  const snapshot =
    state.snapshot.index > 0 ? loadSnapFile(paths.snapDir, state.snapshot.term, state.snapshot.index) : undefined;
  if (snapshot !== undefined) storage.applySnapshot(snapshot);
  if (!fresh && config.forceNewCluster) {
    await forceStandalone(config, identity, state, storage, wal, logger);
  } else {
    storage.setHardState(state.hardState);
    storage.append(state.entries);
  }
  if (fresh && joined === undefined) await bootstrapLog(wal, storage, initialMembers);
  for (const step of recoverSnapshotInstall(paths.snapDir, paths.backendPath, state.snapshot.index))
    logger.warn({ 'snap-dir': paths.snapDir }, step);
  keySpace ??= KeySpace.open(paths.backendPath, config, electionTicks);
  checkBackendCoversSnapshot(keySpace.store.consistentIndex, state.snapshot.index);
  const orphans = keySpace.lessor.recoverAttachments(keySpace.store.takeRestoredLeases());
  if (orphans > 0) logger.warn({ keys: orphans }, 'keys name leases that no longer exist');
  return {
    restarted: !fresh,
    paths,
    newCluster: fresh && joined === undefined,
    identity,
    electionTicks,
    wal,
    storage,
    raft: createRaftNode(config, identity, storage, electionTicks, inspect),
    inspect,
    keySpace,
    transport: createTransport(config, identity, logger, peerPorts),
    snapshotMembership: snapshot === undefined ? undefined : decodeMembership(snapshot.data, 'snapshot'),
    snapshotIndex: state.snapshot.index,
    joinPeers: joined?.peers ?? [],
    startLog: {
      fields: {
        'local-member-id': formatId(identity.memberId),
        'cluster-id': formatId(identity.clusterId),
        'data-dir': config.dataDir,
        'wal-entries': state.entries.length,
        'backend-consistent-index': keySpace.store.consistentIndex,
        'backend-revision': keySpace.store.currentRevision,
      },
      message:
        joined !== undefined ? 'joining an existing cluster' : fresh ? 'starting a new member' : 'restarting member',
    },
  };
}

/**
 * The WAL replays only the entries after its snapshot, so a backend behind the snapshot (its
 * writes since the last sync lost with the power) cannot be brought up to date: refuse, as etcd
 * does when neither the backend nor a snapshot database holds the snapshot's index.
 */
function checkBackendCoversSnapshot(consistentIndex: number, snapshotIndex: number): void {
  if (consistentIndex >= snapshotIndex) return;
  throw new Error(
    `failed to recover v3 backend from snapshot: failed to find database snapshot file (snap: snapshot file doesn't exist): the backend's consistent index ${consistentIndex} is behind the snapshot at index ${snapshotIndex}`,
  );
}

/** The members --initial-cluster names, with IDs hashed from their peer URLs and the cluster token. */
function initialClusterMembers(config: MemberConfig): ClusterMember[] {
  return config.initialCluster.map((member) => ({
    id: memberIdFor(member.peerUrls, config.initialClusterToken),
    name: member.name,
    peerUrls: member.peerUrls,
    clientUrls: member.name === config.name ? config.advertiseClientUrls : [],
    isLearner: false,
  }));
}

function createRaftNode(
  config: MemberConfig,
  identity: MemberIdentity,
  storage: MemoryStorage,
  electionTicks: number,
  inspect: MachineInspect | undefined,
): RawNode {
  return new RawNode({
    ...(inspect === undefined ? {} : { inspect }),
    id: identity.memberId,
    electionTicks,
    heartbeatTicks: 1,
    storage,
    // Conf changes live in the log: re-apply everything after the snapshot, the store skips
    // entries it already holds (its consistent index).
    appliedIndex: storage.firstIndex() - 1,
    preVote: config.preVote,
    checkQuorum: true,
    maxEntriesPerMessage: 4096,
    maxInflightMessages: 256,
    seed: Number(identity.memberId & 0xffffffffn),
  });
}

/** Members in one process talk over MessagePorts with the same frames; others over ws/wss. */
function createTransport(
  config: MemberConfig,
  identity: MemberIdentity,
  logger: Logger,
  peerPorts: Map<bigint, MessagePort> | undefined,
): RaftTransport<unknown> {
  if (peerPorts !== undefined) {
    return new MessagePortTransport({
      localId: identity.memberId,
      clusterId: identity.clusterId,
      log: logger,
    }) as RaftTransport<unknown>;
  }
  const options = {
    localId: identity.memberId,
    clusterId: identity.clusterId,
    listenUrls: config.listenPeerUrls,
    tls: config.peerTls,
    log: logger,
  };
  return new PeerTransport(options) as RaftTransport<unknown>;
}

/** etcd's join: the members named in --initial-cluster (other than this one) tell who this member is. */
async function joinExistingCluster(
  config: MemberConfig,
  logger: Logger,
): Promise<{ identity: MemberIdentity; peers: ClusterMember[] }> {
  const ownUrls =
    config.initialCluster.find((member) => member.name === config.name)?.peerUrls ?? config.initialAdvertisePeerUrls;
  const peerUrls = config.initialCluster
    .filter((member) => member.name !== config.name)
    .flatMap((member) => member.peerUrls);
  let failures: string[] = ['no peer URLs in --initial-cluster besides this member'];
  for (let attempt = 0; attempt < joinFetchAttemptsMax && peerUrls.length > 0; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, joinFetchRetryMs));
    const fetched = await fetchClusterFromPeers(peerUrls, joinFetchTimeoutMs, config.peerTls);
    if ('failures' in fetched) {
      failures = fetched.failures;
      continue;
    }
    const self = fetched.members.find((member) => sameUrls(member.peerUrls, ownUrls));
    if (self === undefined) {
      throw new Error(
        `error validating peerURLs: member with peer URLs ${ownUrls.join(',')} is not in the cluster's member list from ${fetched.from} (add it with member add first)`,
      );
    }
    logger.info(
      { 'local-member-id': formatId(self.id), 'cluster-id': formatId(fetched.clusterId), from: fetched.from },
      'learned identity from the existing cluster',
    );
    return {
      identity: { memberId: self.id, clusterId: fetched.clusterId },
      peers: fetched.members.filter((member) => member.id !== self.id),
    };
  }
  throw new Error(
    `cannot fetch cluster info from peer urls: could not retrieve cluster information from the given URLs (${failures.join('; ')})`,
  );
}

/**
 * --force-new-cluster on an existing data dir (etcd's restartAsStandaloneNode): uncommitted entries
 * are dropped and committed conf changes removing every other member are written to the WAL, so
 * this member restarts as a one-member cluster with all committed data.
 */
async function forceStandalone(
  config: MemberConfig,
  identity: MemberIdentity,
  state: WalState,
  storage: MemoryStorage,
  wal: WalClient,
  logger: Logger,
): Promise<void> {
  const self: ClusterMember = {
    id: identity.memberId,
    name: config.name,
    peerUrls: config.initialAdvertisePeerUrls,
    clientUrls: config.advertiseClientUrls,
    isLearner: false,
  };
  const { confState } = storage.initialState();
  const forced = forceNewClusterLog(
    confState,
    state.entries,
    state.hardState,
    state.snapshot.index,
    identity.memberId,
    encodeMemberContext(self),
  );
  if (forced.forced.length > 0 || forced.entries.length < state.entries.length) {
    await wal.append(forced.forced, forced.hardState);
  }
  storage.setHardState(forced.hardState);
  storage.append(forced.entries);
  logger.info(
    {
      'cluster-id': formatId(identity.clusterId),
      'local-member-id': formatId(identity.memberId),
      'commit-index': forced.hardState.commit,
      'previous-members': forced.previousMembers.map(formatId),
    },
    'forcing restart member',
  );
}

/** A new cluster's first entries: one committed AddNode per initial member, as etcd bootstraps. */
async function bootstrapLog(wal: WalClient, storage: MemoryStorage, members: ClusterMember[]): Promise<void> {
  const entries: Entry[] = members.map((member, position) => ({
    term: 1,
    index: position + 1,
    type: EntryType.confChange,
    data: encodeConfChange({ type: ConfChangeType.addNode, nodeId: member.id, context: encodeMemberContext(member) }),
  }));
  const hardState: HardState = { term: 1, vote: 0n, commit: entries.length };
  await wal.append(entries, hardState);
  storage.append(entries);
  storage.setHardState(hardState);
}
