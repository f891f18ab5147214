/**
 * Rebuilds an etcd 3.4 member's v2 store from its v2 snapshot and the log entries after it, as
 * etcd's v2 applier would: v2 requests write the store, configuration changes write the members
 * under /0 (each such write takes a store index, as in etcd), and v3 requests leave it alone. The
 * keys users wrote live under /1; exportV2Keys lists them as etcd's recursive, sorted Get of /1
 * does, with hidden names (a leading '_') left out.
 */
import { ConfChangeType, decodeConfChange } from '../raft/conf-change.js';
import type { EtcdWalEntry } from '../wal/etcd-wal-reader.js';
import { decodeV2EntryData, type V2Request } from './request-codec.js';
import { V2Store, V2StoreError, type V2Node } from './store.js';

const membersDir = '/0/members';
const removedMembersDir = '/0/removed_members';
const memberAttributesPattern = /^\/0\/members\/[0-9a-fA-F]{1,16}\/attributes$/;
const clusterVersionPath = '/0/version';
const keysDir = '/1';
const confChangeEntry = 1;

/** The rebuilt store, the highest log index it reflects, and the lines etcd's cluster logs on the way. */
export interface V2ReplayResult {
  store: V2Store;
  index: number;
  /** etcd's membership log lines (zap's example JSON, one per line), in the order etcd logs them. */
  logs: string[];
}

/** Replays `entries` onto a store recovered from `snapshot` (etcd's v2 store JSON), if any. */
export function replayV2Store(
  snapshot: { index: number; data: Buffer } | undefined,
  entries: readonly EtcdWalEntry[],
): V2ReplayResult {
  const store = new V2Store();
  let index = 0;
  if (snapshot !== undefined) {
    store.recover(snapshot.data.toString());
    index = snapshot.index;
  }
  const cluster = new ReplayCluster(store);
  for (const entry of entries) {
    if (entry.type === confChangeEntry) cluster.applyConfChange(entry.data);
    else {
      const request = decodeV2EntryData(entry.data);
      if (request !== undefined) applyRequest(store, cluster, request);
    }
    if (entry.index > index) index = entry.index;
  }
  return { store, index, logs: cluster.logs };
}

function ignoringRefusals(write: () => void): void {
  try {
    write();
  } catch (error) {
    if (!(error instanceof V2StoreError)) throw error;
  }
}

function applyRequest(store: V2Store, cluster: ReplayCluster, request: V2Request): void {
  const expireNs = request.expirationNs === 0n ? undefined : request.expirationNs;
  const { path, value, dir, prevValue, prevIndex, refresh } = request;
  switch (request.method) {
    case 'POST':
      return ignoringRefusals(() => store.create(path, dir, value, true, false, expireNs));
    case 'PUT':
      return ignoringRefusals(() => {
        if (request.prevExist === true) {
          if (prevIndex === 0 && prevValue === '') store.update(path, value, expireNs, refresh);
          else store.compareAndSwap(path, prevValue, prevIndex, value, expireNs, refresh);
        } else if (request.prevExist === false) store.create(path, dir, value, false, false, expireNs);
        else if (prevIndex > 0 || prevValue !== '')
          store.compareAndSwap(path, prevValue, prevIndex, value, expireNs, refresh);
        else if (memberAttributesPattern.test(path)) cluster.updateAttributes(path, value);
        else if (path === clusterVersionPath) cluster.setVersion(value);
        else store.set(path, dir, value, expireNs, refresh);
      });
    case 'DELETE':
      return ignoringRefusals(() => {
        if (prevIndex > 0 || prevValue !== '') store.compareAndDelete(path, prevValue, prevIndex);
        else store.delete(path, dir, request.recursive);
      });
    case 'QGET':
      return;
    case 'SYNC':
      return store.deleteExpired(request.timeNs);
    default:
      throw new Error(`unknown v2 request method ${JSON.stringify(request.method)}`);
  }
}

/** A zap example-logger line: level, msg, then the fields in order (a key may repeat, as zap allows). */
function zapLine(level: 'info' | 'warn', msg: string, fields: [string, string | string[]][]): string {
  const parts = [`"level":"${level}"`, `"msg":${JSON.stringify(msg)}`];
  for (const [key, value] of fields) parts.push(`${JSON.stringify(key)}:${JSON.stringify(value)}`);
  return `{${parts.join(',')}}`;
}

/** The major.minor etcd logs for a cluster version such as "3.4.0". */
function clusterVersionText(version: string): string {
  return version.split('.').slice(0, 2).join('.');
}

/** Compares dotted versions numerically; negative when `a` is older. */
function compareVersions(a: string, b: string): number {
  const left = a.split('.').map(Number);
  const right = b.split('.').map(Number);
  for (let at = 0; at < 3; at++) {
    const difference = (left[at] ?? 0) - (right[at] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}

/**
 * The membership a replaying etcd tool keeps beside the store (a cluster with no ID and no local
 * member, hence the "0"s in its logs): recovered from /0 of the store, then changed by the log.
 */
class ReplayCluster {
  readonly logs: string[] = [];
  private readonly ids = [['cluster-id', '0'] as [string, string], ['local-member-id', '0'] as [string, string]];
  private readonly members = new Map<string, string[]>();
  private readonly removed = new Set<string>();
  private version: string | undefined;
  private capabilityVersion: string | undefined;

  constructor(private readonly store: V2Store) {
    for (const [id, member] of store.get(membersDir)?.children ?? []) {
      this.members.set(id, peerUrlsOf(member.children?.get('raftAttributes')?.value ?? '{}'));
    }
    for (const id of store.get(removedMembersDir)?.children?.keys() ?? []) this.removed.add(id);
    this.version = store.get(clusterVersionPath)?.value;
    this.updateCapability();
    for (const [id, peerUrls] of this.members) {
      this.logs.push(
        zapLine('info', 'recovered/added member from store', [
          ...this.ids,
          ['recovered-remote-peer-id', id],
          ['recovered-remote-peer-urls', peerUrls],
        ]),
      );
    }
    if (this.version !== undefined)
      this.logs.push(
        zapLine('info', 'set cluster version from store', [['cluster-version', clusterVersionText(this.version)]]),
      );
  }

  private updateCapability(): void {
    if (this.version === undefined) return;
    if (this.capabilityVersion !== undefined && compareVersions(this.capabilityVersion, this.version) >= 0) return;
    this.capabilityVersion = this.version;
    this.logs.push(
      zapLine('info', 'enabled capabilities for version', [['cluster-version', clusterVersionText(this.version)]]),
    );
  }

  /** A member's published attributes: stored while it is a member, skipped with a warning once removed. */
  updateAttributes(path: string, value: string): void {
    const id = BigInt(`0x${path.split('/')[3]}`).toString(16);
    if (this.members.has(id)) {
      this.store.set(path, false, value, undefined, false);
      return;
    }
    if (!this.removed.has(id)) throw new Error(`failed to update; member unknown: ${id}`);
    this.logs.push(
      zapLine('warn', 'skipped attributes update of removed member', [...this.ids, ['updated-peer-id', id]]),
    );
  }

  setVersion(value: string): void {
    const cluster = clusterVersionText(value);
    if (this.version !== undefined)
      this.logs.push(
        zapLine('info', 'updated cluster version', [
          ...this.ids,
          ['from', clusterVersionText(this.version)],
          ['from', cluster],
        ]),
      );
    else this.logs.push(zapLine('info', 'set initial cluster version', [...this.ids, ['cluster-version', cluster]]));
    this.version = value;
    this.store.set(clusterVersionPath, false, value, undefined, false);
    this.updateCapability();
  }

  /** A configuration change as etcd's cluster applies it to the store, after etcd's validation. */
  applyConfChange(data: Buffer): void {
    const change = decodeConfChange(data);
    const id = change.nodeId.toString(16);
    if (this.removed.has(id)) return;
    const exists = this.members.has(id);
    const urlsInUse = new Set([...this.members].filter(([other]) => other !== id).flatMap(([, urls]) => urls));
    if (change.type === ConfChangeType.removeNode) {
      if (!exists) return;
      const peerUrls = this.members.get(id)!;
      this.store.delete(`${membersDir}/${id}`, true, true);
      this.store.create(`${removedMembersDir}/${id}`, false, '', false, false);
      this.members.delete(id);
      this.removed.add(id);
      this.logs.push(
        zapLine('info', 'removed member', [
          ...this.ids,
          ['removed-remote-peer-id', id],
          ['removed-remote-peer-urls', peerUrls],
        ]),
      );
      return;
    }
    if (change.type !== ConfChangeType.addNode && change.type !== ConfChangeType.updateNode) return;
    const attributes = raftAttributesOf(change.context);
    if (attributes === undefined || attributes.peerUrls.some((url) => urlsInUse.has(url))) return;
    const raftAttributesPath = `${membersDir}/${id}/raftAttributes`;
    if (change.type === ConfChangeType.addNode) {
      if (exists) return;
      this.store.create(raftAttributesPath, false, attributes.json, false, false);
      this.members.set(id, attributes.peerUrls);
      this.logs.push(
        zapLine('info', 'added member', [
          ...this.ids,
          ['added-peer-id', id],
          ['added-peer-peer-urls', attributes.peerUrls],
        ]),
      );
    } else {
      if (!exists) return;
      this.store.update(raftAttributesPath, attributes.json, undefined, false);
      this.members.set(id, attributes.peerUrls);
      this.logs.push(
        zapLine('info', 'updated member', [
          ...this.ids,
          ['updated-remote-peer-id', id],
          ['updated-remote-peer-urls', attributes.peerUrls],
        ]),
      );
    }
  }
}

/** The peer URLs a member's raftAttributes hold, from the JSON etcd keeps under /0/members. */
function peerUrlsOf(json: string): string[] {
  try {
    const parsed = JSON.parse(json) as { peerURLs?: unknown };
    return Array.isArray(parsed.peerURLs) ? parsed.peerURLs.filter((url) => typeof url === 'string') : [];
  } catch {
    return [];
  }
}

/** The raftAttributes JSON etcd stores for the member a conf change's context carries. */
function raftAttributesOf(context: Uint8Array | undefined): { json: string; peerUrls: string[] } | undefined {
  try {
    const member = JSON.parse(Buffer.from(context ?? []).toString()) as { peerURLs?: unknown; isLearner?: unknown };
    const peerUrls = Array.isArray(member.peerURLs) ? member.peerURLs.map(String) : [];
    const learner = member.isLearner === true ? ',"isLearner":true' : '';
    return { json: `{"peerURLs":${JSON.stringify(peerUrls)}${learner}}`, peerUrls };
  } catch {
    return undefined;
  }
}

/** One key as etcd's Get of /1 lists it, its path relative to /1 ("/" for /1 itself). */
export interface V2KeyNode {
  key: string;
  dir: boolean;
  value: string;
  expireNs: bigint | undefined;
  createdIndex: number;
  modifiedIndex: number;
}

/** The user's keys (/1 and all below it, depth first, names in byte order), or undefined when /1 does not exist. */
export function exportV2Keys(store: V2Store): V2KeyNode[] | undefined {
  const top = store.get(keysDir);
  if (top === undefined) return undefined;
  const nodes: V2KeyNode[] = [];
  const visit = (node: V2Node): void => {
    const key = node.path.slice(keysDir.length);
    nodes.push({
      key: key === '' ? '/' : key,
      dir: node.children !== undefined,
      value: node.value,
      expireNs: node.expireNs,
      createdIndex: node.createdIndex,
      modifiedIndex: node.modifiedIndex,
    });
    if (node.children === undefined) return;
    const names = [...node.children.keys()].filter((name) => !name.startsWith('_'));
    names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) visit(node.children.get(name)!);
  };
  visit(top);
  return nodes;
}

/** A TTL node's remaining seconds at `nowNs`, rounded up as etcd rounds them; 0 for a permanent node. */
export function ttlSecondsAt(node: V2KeyNode, nowNs: bigint): number {
  if (node.expireNs === undefined) return 0;
  const left = node.expireNs - nowNs;
  const seconds = left / 1_000_000_000n;
  return Number(left % 1_000_000_000n > 0n ? seconds + 1n : seconds);
}
