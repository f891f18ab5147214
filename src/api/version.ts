/**
 * Versions tsetcd reports. Clients and tools gate features on the etcd versions, so we claim the
 * etcd release whose API we implement; tsetcd's own version comes from package.json.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../lib/paths.js';
import { clusterVersionNotDecided } from '../membership/cluster-version.js';

/** The etcd server release whose client API, flags and behaviour tsetcd follows (the differential tests run against it). */
export const etcdServerVersion = '3.4.23';
/** The API version etcd 3.4 prints in `etcd --version`. */
export const etcdApiVersion = '3.4';

/** tsetcd's own release, as package.json states it. */
export const tsetcdVersion: string = (
  JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }
).version;

/** The body etcd serves at GET /version, given the cluster version the members applied (undefined: none yet). */
export function versionBody(clusterVersion: string | undefined): { etcdserver: string; etcdcluster: string } {
  return { etcdserver: etcdServerVersion, etcdcluster: clusterVersion ?? clusterVersionNotDecided };
}
