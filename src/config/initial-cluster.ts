/**
 * etcd's --initial-cluster: parsing it and checking that it names this member, for a member's
 * start (config.ts) and a snapshot restore, which should not load the whole configuration parser.
 */
import type { ClusterMemberConfig } from './config.js';
import { ConfigError } from './config-error.js';
import { goQuoteList, goQuoteString } from '../lib/go-quote.js';

/** Parses etcd's --initial-cluster ("a=http://h:1,a=http://h:2,b=...") into members in first-seen order. */
export function parseInitialCluster(text: string): ClusterMemberConfig[] {
  const members = new Map<string, string[]>();
  for (const item of text.split(',').filter((part) => part !== '')) {
    const equalsAt = item.indexOf('=');
    if (equalsAt <= 0) throw new ConfigError(`error setting up initial cluster: ${item} is not a valid name=url pair`);
    const name = item.slice(0, equalsAt);
    const url = item.slice(equalsAt + 1);
    try {
      new URL(url);
    } catch {
      throw new ConfigError(`error setting up initial cluster: invalid peer URL ${JSON.stringify(url)}`);
    }
    members.set(name, [...(members.get(name) ?? []), url]);
  }
  return [...members].map(([name, peerUrls]) => ({ name, peerUrls }));
}

/** etcd's hasLocalMember: --initial-cluster must name this member (--name). */
export function checkLocalMemberNamed(name: string, initialCluster: readonly ClusterMemberConfig[]): void {
  if (!initialCluster.some((member) => member.name === name)) {
    throw new ConfigError(`couldn't find local name ${goQuoteString(name)} in the initial cluster configuration`);
  }
}

/** etcd's URLsMap text: every name=url pair, sorted, joined by commas. */
export function initialClusterText(members: readonly ClusterMemberConfig[]): string {
  return members
    .flatMap((member) => member.peerUrls.map((url) => `${member.name}=${url}`))
    .sort()
    .join(',');
}

/** etcd refuses an initial cluster in which one peer URL appears twice. */
export function checkNoDuplicateUrl(initialCluster: readonly ClusterMemberConfig[]): void {
  const urls = initialCluster.flatMap((member) => member.peerUrls);
  if (new Set(urls).size !== urls.length) {
    throw new ConfigError(`initial cluster ${initialClusterText(initialCluster)} has duplicate url`);
  }
}

/** etcd's checks of a member joining a running cluster (--initial-cluster-state existing, no WAL yet). */
export function verifyJoinExisting(name: string, initialCluster: readonly ClusterMemberConfig[]): void {
  checkLocalMemberNamed(name, initialCluster);
  checkNoDuplicateUrl(initialCluster);
}

/**
 * etcd's checks of a member that bootstraps a new cluster (and of a snapshot restore): it is named
 * in --initial-cluster with exactly the peer URLs it advertises, where a host name on either side
 * counts as the address it resolves to, and no peer URL appears twice.
 */
export async function verifyBootstrap(
  name: string,
  initialCluster: readonly ClusterMemberConfig[],
  advertisePeerUrls: readonly string[],
  resolver: PeerUrlResolver,
): Promise<void> {
  checkLocalMemberNamed(name, initialCluster);
  await checkAdvertiseMatchesCluster(name, initialCluster, advertisePeerUrls, resolver);
  checkNoDuplicateUrl(initialCluster);
}

async function checkAdvertiseMatchesCluster(
  name: string,
  initialCluster: readonly ClusterMemberConfig[],
  advertisePeerUrls: readonly string[],
  resolver: PeerUrlResolver,
): Promise<void> {
  const clusterUrls = initialCluster.filter((member) => member.name === name).flatMap((member) => member.peerUrls);
  const advertised = [...advertisePeerUrls].sort();
  const mismatch = await peerUrlsMismatch(advertised, [...clusterUrls].sort(), resolver);
  if (mismatch === undefined) return;
  const advertisedSet = new Set(advertised);
  const clusterSet = new Set(clusterUrls);
  const missingFromAdvertised = [...clusterSet].filter((url) => !advertisedSet.has(url));
  if (missingFromAdvertised.length > 0) {
    throw new ConfigError(
      `--initial-cluster has ${missingFromAdvertised.map((url) => `${name}=${url}`).join(',')} but missing from --initial-advertise-peer-urls=${advertised.join(',')} (${mismatch})`,
    );
  }
  const advertisedAs = initialClusterText([{ name, peerUrls: advertised }]);
  const missingFromCluster = [...advertisedSet].filter((url) => !clusterSet.has(url));
  if (missingFromCluster.length > 0) {
    throw new ConfigError(
      `--initial-advertise-peer-urls has ${missingFromCluster.join(',')} but missing from --initial-cluster=${advertisedAs}`,
    );
  }
  throw new ConfigError(
    `failed to resolve ${advertised.join(',')} to match --initial-cluster=${advertisedAs} (${mismatch})`,
  );
}

/**
 * Compares two sorted URL lists as etcd does: equal as written, or equal once every host name is
 * resolved to an address; otherwise the reason, in etcd's words.
 */
async function peerUrlsMismatch(
  advertised: readonly string[],
  clusterUrls: readonly string[],
  resolver: PeerUrlResolver,
): Promise<string | undefined> {
  if (advertised.length !== clusterUrls.length) {
    return `len(${goQuoteList(advertised)}) != len(${goQuoteList(clusterUrls)})`;
  }
  if (advertised.every((url, index) => url === clusterUrls[index])) return undefined;
  const resolved: string[][] = [];
  try {
    for (const list of [advertised, clusterUrls]) {
      const each: string[] = [];
      for (const url of list) each.push(await resolver.resolveUrl(url));
      resolved.push(each.sort());
    }
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  const [left = [], right = []] = resolved;
  const differing = left.findIndex((url, index) => url !== right[index]);
  return differing < 0
    ? undefined
    : `resolved urls: ${goQuoteString(left[differing] ?? '')} != ${goQuoteString(right[differing] ?? '')}`;
}

/** Resolves a peer URL's host name to an address (host:port), or throws a ConfigError in etcd's words. */
export interface PeerUrlResolver {
  resolveUrl(url: string): Promise<string>;
}
