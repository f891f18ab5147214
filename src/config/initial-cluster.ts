/**
 * etcd's --initial-cluster: parsing it and checking that it names this member, for a member's
 * start (config.ts) and a snapshot restore, which should not load the whole configuration parser.
 */
import type { ClusterMemberConfig } from './config.js';
import { ConfigError } from './config-error.js';

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

/**
 * etcd's bootstrap checks that --initial-cluster names this member (--name) with the peer URLs it
 * advertises; a member start and a snapshot restore both make them.
 */
export function checkLocalMember(
  name: string,
  initialCluster: readonly ClusterMemberConfig[],
  advertisePeerUrls: readonly string[],
): void {
  const self = initialCluster.find((member) => member.name === name);
  if (self === undefined) {
    throw new ConfigError(`couldn't find local name "${name}" in the initial cluster configuration`);
  }
  const advertised = [...advertisePeerUrls].sort().join(',');
  if ([...self.peerUrls].sort().join(',') !== advertised) {
    throw new ConfigError(
      `--initial-cluster has ${name}=${self.peerUrls.join(',')} but missing from --initial-advertise-peer-urls=${advertisePeerUrls.join(',')}`,
    );
  }
}
