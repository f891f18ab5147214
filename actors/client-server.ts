/**
 * A member's client side: the gRPC services (KV, plus what the member already answers of
 * Maintenance and Cluster) and HTTP/1.1 /health and /version, on every --listen-client-urls.
 */
import { headerToWire } from '../src/api/codec.js';
import type { WireMessage } from '../src/api/codec.js';
import { etcdServerVersion } from '../src/api/version.js';
import type { MemberConfig } from '../src/config/config.js';
import { createGrpcServer, type GrpcHandlers } from './grpc-server.js';
import { listenClient, type ClientListener } from './client-listener.js';
import { leaseHandlers } from './lease-service.js';
import { watchHandler } from './watch-stream.js';
import { concurrencyHandlers } from './concurrency-service.js';
import { concurrencyHostFor } from './concurrency-host.js';
import type { Logger } from './logger.js';
import type { Member } from './member.js';

export interface ClientServer {
  /** The URLs actually served (ports resolved when a URL asked for port 0). */
  urls: string[];
  close(): Promise<void>;
}

/** etcd binds "localhost" as the IPv4 loopback; Node would pick whichever address resolves first. */
function bindHost(url: URL): string {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return host === 'localhost' ? '127.0.0.1' : host;
}

function maintenanceAndClusterHandlers(config: MemberConfig, member: Member): GrpcHandlers {
  return {
    'etcdserverpb.Maintenance/Status': async (): Promise<WireMessage> => {
      const status = member.status();
      return {
        header: headerToWire(member.header()),
        version: etcdServerVersion,
        dbSize: String(status.backendBytes),
        leader: status.leaderId.toString(),
        raftIndex: String(status.raftIndex),
        raftTerm: String(status.raftTerm),
        raftAppliedIndex: String(status.raftAppliedIndex),
        errors: [],
        dbSizeInUse: String(status.backendBytes),
        isLearner: false,
      };
    },
    'etcdserverpb.Cluster/MemberList': async (): Promise<WireMessage> => ({
      header: headerToWire(member.header()),
      members: [...member.members.values()]
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
        .map((known) => ({
          ID: known.id.toString(),
          name: known.name,
          peerURLs: known.peerUrls,
          clientURLs: known.clientUrls,
          isLearner: known.isLearner,
        })),
    }),
    'etcdserverpb.Maintenance/HashKV': async (request: WireMessage): Promise<WireMessage> => {
      const hashed = member.hashKv(Number(request.revision ?? 0));
      return { header: headerToWire(member.header()), hash: String(hashed.hash), compactRevision: String(hashed.compactRevision) };
    },
  };
}

/** Serves the member's client API on each listen-client-url. */
export async function startClientServer(config: MemberConfig, member: Member, logger: Logger): Promise<ClientServer> {
  const grpcServer = createGrpcServer({
    kv: member,
    handlers: {
      ...maintenanceAndClusterHandlers(config, member),
      ...leaseHandlers(member),
      ...concurrencyHandlers(concurrencyHostFor(member)),
      'etcdserverpb.Watch/Watch': watchHandler({
        header: () => member.header(),
        watchable: member.watchable,
        wake: member.watchDriver.wake,
        progressNotifyIntervalMs: config.watchProgressNotifyIntervalMs,
        maxRequestBytes: config.maxRequestBytes,
      }),
    },
    limits: { maxRequestBytes: config.maxRequestBytes, maxTxnOps: config.maxTxnOps },
    healthy: () => member.healthy(),
    logger,
  });
  const listeners: ClientListener[] = [];
  const urls: string[] = [];
  for (const text of config.listenClientUrls) {
    const url = new URL(text);
    if (url.protocol !== 'http:') {
      throw new Error(`listen-client-urls ${text}: only http:// is served so far (TLS arrives with the security issue)`);
    }
    const listener = await listenClient({
      host: bindHost(url),
      port: Number(url.port),
      grpcServer,
      http: {
        health: () =>
          member.healthy() ? { health: true, reason: '' } : { health: false, reason: 'RAFT NO LEADER' },
      },
    });
    listeners.push(listener);
    urls.push(`http://${url.hostname}:${listener.port}`);
    logger.info({ address: `${bindHost(url)}:${listener.port}` }, 'serving client traffic insecurely; this is strongly discouraged!');
  }
  return {
    urls,
    close: async () => {
      await Promise.all(listeners.map((listener) => listener.close()));
      grpcServer.forceShutdown();
    },
  };
}
