/** The cluster's members as Raft conf changes carry them. */

/** One member as the cluster knows it (etcd's Member: raft attributes and published attributes). */
export interface ClusterMember {
  id: bigint;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

/** ConfChange context: the member being added, as JSON with bigint IDs in decimal. */
export function encodeMemberContext(member: ClusterMember): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ ...member, id: member.id.toString() }));
}

/** Reads a ConfChange context written by encodeMemberContext; an empty one names only the ID. */
export function decodeMemberContext(context: Uint8Array | undefined, id: bigint): ClusterMember {
  if (context === undefined || context.length === 0) return { id, name: '', peerUrls: [], clientUrls: [], isLearner: false };
  const parsed = JSON.parse(new TextDecoder().decode(context)) as Omit<ClusterMember, 'id'> & { id: string };
  return { ...parsed, id: BigInt(parsed.id) };
}

