/**
 * Member and cluster IDs derived as etcd derives them, so a member bootstrapped with the same
 * flags gets the same IDs as real etcd: member ID = first 8 bytes (big endian) of
 * SHA-1(sorted peer URLs concatenated + cluster token); cluster ID = first 8 bytes of SHA-1 over
 * the sorted member IDs as 8-byte big-endian values.
 */
import { createHash } from 'node:crypto';

/** etcd's member ID for a member with these peer URLs in the cluster named by `clusterToken`. */
export function memberIdFor(peerUrls: readonly string[], clusterToken: string): bigint {
  const hash = createHash('sha1');
  for (const url of [...peerUrls].sort()) hash.update(url);
  hash.update(clusterToken);
  return hash.digest().readBigUInt64BE(0);
}

/** etcd's cluster ID for a cluster with these member IDs. */
export function clusterIdFor(memberIds: readonly bigint[]): bigint {
  const sorted = [...memberIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const bytes = Buffer.alloc(8 * sorted.length);
  sorted.forEach((id, position) => bytes.writeBigUInt64BE(id, 8 * position));
  return createHash('sha1').update(bytes).digest().readBigUInt64BE(0);
}

/** Formats an ID as etcd prints it: lowercase hex without padding. */
export function formatId(id: bigint): string {
  return id.toString(16);
}
