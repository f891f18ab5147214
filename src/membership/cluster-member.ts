/** The cluster's members as Raft conf changes carry them and as etcd's peer API lists them. */

/** One member as the cluster knows it (etcd's Member: raft attributes and published attributes). */
export interface ClusterMember {
  id: bigint;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

/** What a conf change's context says: the member, and whether an AddNode promotes a learner. */
export interface MemberChange {
  member: ClusterMember;
  isPromote: boolean;
}

/** ConfChange context: the member being added or updated, as JSON with bigint IDs in decimal. */
export function encodeMemberContext(member: ClusterMember, isPromote = false): Uint8Array {
  const body: Record<string, unknown> = { ...member, id: member.id.toString() };
  if (isPromote) body.isPromote = true;
  return new TextEncoder().encode(JSON.stringify(body));
}

/** Reads a ConfChange context written by encodeMemberContext; an empty one names only the ID. */
export function decodeMemberChange(context: Uint8Array | undefined, id: bigint): MemberChange {
  if (context === undefined || context.length === 0) return { member: emptyMember(id), isPromote: false };
  const parsed = JSON.parse(new TextDecoder().decode(context)) as Partial<Omit<ClusterMember, 'id'>> & {
    id?: string;
    isPromote?: boolean;
  };
  const member: ClusterMember = {
    id: parsed.id === undefined ? id : BigInt(parsed.id),
    name: parsed.name ?? '',
    peerUrls: parsed.peerUrls ?? [],
    clientUrls: parsed.clientUrls ?? [],
    isLearner: parsed.isLearner ?? false,
  };
  return { member, isPromote: parsed.isPromote === true };
}

function emptyMember(id: bigint): ClusterMember {
  return { id, name: '', peerUrls: [], clientUrls: [], isLearner: false };
}

/** Members in etcd's order: by ID as an unsigned 64-bit number. */
export function sortMembers(members: Iterable<ClusterMember>): ClusterMember[] {
  return [...members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** A deep copy, so answers handed out are not changed by later conf changes. */
export function cloneMember(member: ClusterMember): ClusterMember {
  return { ...member, peerUrls: [...member.peerUrls], clientUrls: [...member.clientUrls] };
}

/**
 * etcd's JSON for GET /members on the peer port (and its promote answer): Go's encoding of
 * membership.Member, ID as a bare uint64, empty name/clientURLs/isLearner left out, one line.
 */
export function membersToPeerJson(members: Iterable<ClusterMember>): string {
  return `[${sortMembers(members).map(memberToEtcdJson).join(',')}]\n`;
}

/**
 * Go's encoding of one membership.Member: ID as a bare uint64, empty name, clientURLs and
 * isLearner left out. The peer API lists these and the backend's "members" bucket stores them.
 */
export function memberToEtcdJson(member: ClusterMember): string {
  const fields = [`"id":${member.id.toString()}`, `"peerURLs":${JSON.stringify(member.peerUrls)}`];
  if (member.isLearner) fields.push('"isLearner":true');
  if (member.name !== '') fields.push(`"name":${JSON.stringify(member.name)}`);
  if (member.clientUrls.length > 0) fields.push(`"clientURLs":${JSON.stringify(member.clientUrls)}`);
  return `{${fields.join(',')}}`;
}

/** Parses etcd's /members JSON, keeping the 64-bit IDs exact (JSON numbers lose them as doubles). */
export function membersFromPeerJson(text: string): ClusterMember[] {
  const quoted = text.replace(/("id"\s*:\s*)(\d+)/g, '$1"$2"');
  const parsed = JSON.parse(quoted) as unknown;
  if (!Array.isArray(parsed)) throw new Error(`expected a JSON list of members, saw ${text.slice(0, 200)}`);
  return parsed.map(
    (item: { id?: string; name?: string; peerURLs?: string[]; clientURLs?: string[]; isLearner?: boolean }) => {
      if (typeof item.id !== 'string')
        throw new Error(`expected a member with a numeric id, saw ${JSON.stringify(item)}`);
      return {
        id: BigInt(item.id),
        name: item.name ?? '',
        peerUrls: item.peerURLs ?? [],
        clientUrls: item.clientURLs ?? [],
        isLearner: item.isLearner ?? false,
      };
    },
  );
}

/** True when both lists name the same URLs, in any order (etcd compares sorted peer URLs). */
export function sameUrls(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const sortedB = [...b].sort();
  return [...a].sort().every((url, position) => url === sortedB[position]);
}

/** etcd's types.NewURLs check for member URLs: http(s)://host:port (or unix), no path. */
export function validPeerUrls(urls: readonly string[]): boolean {
  if (urls.length === 0) return false;
  return urls.every(
    (text) => /^unixs?:\/\/\S+$/i.test(text) || /^https?:\/\/(\[[0-9a-f:.]+\]|[^/:?#@\s]+):\d{1,5}$/i.test(text),
  );
}
