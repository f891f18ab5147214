/**
 * A gRPC name resolver for a list of endpoints, as clientv3 dials them: each `host:port` may be an
 * IPv4 or IPv6 literal or a host name (looked up for every address family, a root dot allowed),
 * and the channel fails over along the list. grpc-js's own `ipv4:`/`ipv6:` targets take literals
 * of one family only, and its `dns:` target one name through getaddrinfo; this takes any mix, and
 * looks names up as ctl/host-lookup.ts does. Names are looked up
 * again whenever the channel asks (after a connection failed), as Go's dialer does on each dial.
 */
import type * as grpc from '@grpc/grpc-js';
import { lookupHost } from './host-lookup.js';
import { grpcJs } from './lazy-modules.js';
import { monotonicMs } from './monotonic-clock.js';
import { isIP } from 'node:net';

/** The target scheme this resolver answers, `etcd-endpoints:host:port,host:port`. */
export const endpointListScheme = 'etcd-endpoints';

type Address = { host: string; port: number };

/**
 * The least time between two look-ups of the list, grpc's first reconnect backoff: the channel asks
 * again as soon as every address failed, and a list of literals answers at once, so without it a
 * server that refuses the handshake would be dialled in a loop that never yields to the deadline.
 */
const resolutionIntervalMinMs = 1_000;

/** `host:port` or `[v6]:port` split into host and port; undefined when there is no port. */
function splitHostPort(hostPort: string): Address | undefined {
  const match = /^(?:\[([^\]]*)\]|([^:]*)):(\d+)$/.exec(hostPort);
  if (match === null) return undefined;
  return { host: match[1] ?? match[2] ?? '', port: Number(match[3]) };
}

/** Every address one endpoint names (none when its name does not resolve). */
async function addressesOf(hostPort: string): Promise<Address[]> {
  const split = splitHostPort(hostPort);
  if (split === undefined) return [];
  if (isIP(split.host) !== 0) return [split];
  try {
    const found = await lookupHost(split.host);
    return found.map((entry) => ({ host: entry.address, port: split.port }));
  } catch {
    return [];
  }
}

class EndpointListResolver implements grpc.experimental.Resolver {
  private readonly hostPorts: string[];
  private resolving = false;
  private destroyed = false;
  private lastResolvedAt = -Infinity;
  private pending: NodeJS.Timeout | undefined;

  constructor(
    target: grpc.experimental.GrpcUri,
    private readonly listener: grpc.experimental.ResolverListener,
  ) {
    this.hostPorts = target.path.split(',').filter((hostPort) => hostPort !== '');
  }

  updateResolution(): void {
    this.destroyed = false;
    if (this.resolving || this.pending !== undefined) return;
    const waitMs = this.lastResolvedAt + resolutionIntervalMinMs - monotonicMs();
    if (waitMs > 0) {
      // Unref'd: a command that has its answer does not wait for the next look-up.
      this.pending = setTimeout(() => {
        this.pending = undefined;
        this.updateResolution();
      }, waitMs);
      this.pending.unref();
      return;
    }
    this.resolving = true;
    this.lastResolvedAt = monotonicMs();
    void this.resolve();
  }

  private async resolve(): Promise<void> {
    const lists = await Promise.all(this.hostPorts.map(addressesOf));
    this.resolving = false;
    if (this.destroyed) return;
    const endpoints = lists.filter((addresses) => addresses.length > 0).map((addresses) => ({ addresses }));
    if (endpoints.length === 0) {
      const details = `name resolution failed for ${this.hostPorts.join(',')}`;
      const grpcModule = grpcJs();
      const error = { code: grpcModule.status.UNAVAILABLE, details, metadata: new grpcModule.Metadata() };
      this.listener(grpcModule.experimental.statusOrFromError(error), {}, null, '');
    } else this.listener(grpcJs().experimental.statusOrFromValue(endpoints), {}, null, '');
  }

  destroy(): void {
    this.destroyed = true;
    clearTimeout(this.pending);
    this.pending = undefined;
  }

  /** The first endpoint names the server, as clientv3's balancer names it. */
  static getDefaultAuthority(target: grpc.experimental.GrpcUri): string {
    return target.path.split(',')[0] ?? '';
  }
}

let registered = false;

/** The gRPC target dialling `hostPorts` (each `host:port`) in order, with failover along the list. */
export function endpointListTarget(hostPorts: readonly string[]): string {
  if (!registered) grpcJs().experimental.registerResolver(endpointListScheme, EndpointListResolver);
  registered = true;
  return `${endpointListScheme}:${hostPorts.join(',')}`;
}
