/**
 * The cluster version, as etcd 3.4 decides and reports it: the lowest major.minor among the
 * members' server versions, chosen by the leader and replicated through Raft so every member
 * applies the same value. Versions are "major.minor.patch" strings ("3.4.0" is what the log
 * entry, /version and the backup's cluster bucket carry; "3.4" is how logs and metrics name it).
 * Also the log lines etcd writes on the way (message and caller), which operators wait for.
 */

/** The lowest cluster version an etcd 3.4 member works in (etcd's version.MinClusterVersion). */
export const minClusterVersion = '3.0.0';
/** What /version says while the cluster has no version yet. */
export const clusterVersionNotDecided = 'not_decided';

/** The cluster-version log lines, with the caller etcd 3.4.23 names for each. */
export const clusterVersionLogs = {
  settingUp: { msg: 'setting up initial cluster version', caller: 'etcdserver/server.go:2567' },
  updating: { msg: 'updating cluster version', caller: 'etcdserver/server.go:2576' },
  updated: { msg: 'cluster version is updated', caller: 'etcdserver/server.go:2599' },
  updateAborted: { msg: 'aborting cluster version update; server is stopped', caller: 'etcdserver/server.go:2605' },
  updateFailed: { msg: 'failed to update cluster version', caller: 'etcdserver/server.go:2613' },
  setInitial: { msg: 'set initial cluster version', caller: 'membership/cluster.go:558' },
  setUpdated: { msg: 'updated cluster version', caller: 'membership/cluster.go:546' },
  setFromStore: { msg: 'set cluster version from store', caller: 'membership/cluster.go:269' },
  capabilities: { msg: 'enabled capabilities for version', caller: 'api/capability.go:76' },
  remoteUnknown: { msg: 'failed to get version', caller: 'etcdserver/cluster_util.go:167' },
} as const;

interface Semver {
  major: number;
  minor: number;
  patch: number;
}

const semverPattern = /^(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$/;

/** The parts of a "major.minor.patch" version (pre-release and build suffixes ignored); undefined when it is not one. */
function parse(version: string): Semver | undefined {
  const match = semverPattern.exec(version);
  if (match === null) return undefined;
  return { major: Number(match[1]), minor: Number(match[2]), patch: Number(match[3]) };
}

function compare(a: Semver, b: Semver): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch;
}

function mustParse(version: string): Semver {
  const parsed = parse(version);
  if (parsed === undefined) throw new Error(`expected a major.minor.patch version, saw ${JSON.stringify(version)}`);
  return parsed;
}

/** True when `version` is a major.minor.patch version. */
export function isVersion(version: string): boolean {
  return parse(version) !== undefined;
}

/** True when version `a` is lower than `b`. */
export function versionLessThan(a: string, b: string): boolean {
  return compare(mustParse(a), mustParse(b)) < 0;
}

/** "3.4.23" -> "3.4.0": the cluster version a server version stands for. */
export function clusterVersionOf(serverVersion: string): string {
  const { major, minor } = mustParse(serverVersion);
  return `${major}.${minor}.0`;
}

/** "3.4.0" -> "3.4": how etcd's logs and metrics name a cluster version (version.Cluster). */
export function clusterVersionLabel(version: string): string {
  const parts = version.split('.');
  return parts.length <= 2 ? version : `${parts[0]}.${parts[1]}`;
}

/**
 * etcd's decideClusterVersion: the lowest of the members' server versions, or undefined when
 * some member's version is unknown (it did not answer) or is not a version.
 */
export function decideClusterVersion(serverVersions: readonly (string | undefined)[]): string | undefined {
  let lowest: Semver | undefined;
  for (const text of serverVersions) {
    const version = text === undefined ? undefined : parse(text);
    if (version === undefined) return undefined;
    if (lowest === undefined || compare(version, lowest) < 0) lowest = version;
  }
  return lowest === undefined ? undefined : `${lowest.major}.${lowest.minor}.0`;
}

/**
 * What the leader proposes (etcd's monitorVersions): with no cluster version yet, the decided one
 * or, when undecided, the lowest etcd 3.4 works in; afterwards only a decided version above the
 * current one. Undefined: nothing to propose.
 */
export function clusterVersionToPropose(current: string | undefined, decided: string | undefined): string | undefined {
  if (current === undefined) return decided ?? minClusterVersion;
  if (decided !== undefined && versionLessThan(current, decided)) return decided;
  return undefined;
}

/** etcd's UpdateCapability: capabilities follow a version only when it is set and above the one they follow now. */
export function raisesCapabilities(enabledFor: string | undefined, version: string | undefined): boolean {
  if (version === undefined) return false;
  return enabledFor === undefined || versionLessThan(enabledFor, version);
}
