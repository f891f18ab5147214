/**
 * A member's client side: the gRPC services (KV, plus what the member already answers of
 * Maintenance, Snapshot included, and Cluster) and HTTP/1.1 /health, /version and /metrics, on every --listen-client-urls,
 * and /metrics with /health on every --listen-metrics-urls.
 */
import { headerToWire, streamingMethods } from '../../src/api/proto-wire.js';
import type { WireMessage } from '../../src/api/proto-wire.js';
import { errors, EtcdError, GrpcCode, maintenanceRefusal, watchRefusalReason } from '../../src/api/errors.js';
import { AlarmAction, AlarmType, alarmTypeOf, type AlarmMember } from '../../src/alarm/alarm-store.js';
import type { KvService } from '../../src/api/types.js';
import type { ClusterMember } from '../../src/membership/cluster-member.js';
import { etcdServerVersion } from '../../src/api/version.js';
import type { MemberConfig } from '../../src/config/config.js';
import { createGrpcServer, type GrpcHandlers, type StreamHandler, type UnaryHandler } from './grpc/router.js';
import { LeaderRequirement } from './grpc/require-leader.js';
import { listenClient, type ClientListener, type HealthReport } from './listener.js';
import { listenMetrics, metricsRoute, type MetricsListener } from './metrics-endpoint.js';
import { allowedHostnameCheck, gatewayCredentials, readClientTlsMaterial, serverTlsOptions } from './tls.js';
import { http2ServerOptions } from './http2/server-options.js';
import { leaseHandlers } from './grpc/lease-service.js';
import { createJsonGateway, gatewayTarget, type JsonGateway } from './json-gateway.js';
import { watchHandler, type WatchAuthorizer } from './grpc/watch-service.js';
import { snapshotHandler } from './grpc/snapshot-service.js';
import { concurrencyHandlers } from './grpc/concurrency-service.js';
import { authHandlers } from './grpc/auth-service.js';
import { concurrencyHostFor } from '../member/concurrency-host.js';
import type { Logger } from '../shared/logger.js';
import { logRejectedConnection, type TlsRefusal } from '../shared/tls-refusal.js';
import type { Member } from '../member/member.js';
import type { TLSSocket } from 'node:tls';
import { AuditLog, type AuditFields, type AuditSink } from '../audit/audit-log.js';
import { subjectOf, tlsHandshakeMethod } from '../../src/audit/audit-record.js';
import type { CallerCredentials } from '../../src/auth/types.js';
import { formatId } from '../../src/membership/ids.js';
import { DashboardFeed } from './dashboard.js';

export interface ClientServer {
  /** The URLs actually served (ports resolved when a URL asked for port 0). */
  urls: string[];
  /** The --listen-metrics-urls served, likewise. */
  metricsUrls: string[];
  /**
   * Starts answering on the client URLs, bound since start; call it once the member is published,
   * as etcd does. The metrics URLs answer from the start.
   */
  serve(): void;
  close(): Promise<void>;
}

/** etcd binds "localhost" as the IPv4 loopback; Node would pick whichever address resolves first. */
function bindHost(url: URL): string {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return host === 'localhost' ? '127.0.0.1' : host;
}

/** etcd's pb.Member; IDs as decimal strings (uint64 on the wire). */
function memberToWire(member: ClusterMember): WireMessage {
  return {
    ID: member.id.toString(),
    name: member.name,
    peerURLs: member.peerUrls,
    clientURLs: member.clientUrls,
    isLearner: member.isLearner,
  };
}

/** A uint64 field of a request (decoded as a decimal string); 0 when absent. */
function wireId(value: unknown): bigint {
  return BigInt(typeof value === 'string' || typeof value === 'number' ? value : 0);
}

function wireUrls(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : [];
}

/** etcd's pb.AlarmMember on the wire; enums as numbers. */
function alarmMemberToWire(alarm: AlarmMember): WireMessage {
  return { memberID: alarm.memberId.toString(), alarm: alarm.alarm };
}

/** AlarmRequest.action as proto-loader hands it (name or number). */
function alarmActionOf(value: unknown): AlarmAction {
  if (value === 'ACTIVATE' || value === 1) return AlarmAction.activate;
  if (value === 'DEACTIVATE' || value === 2) return AlarmAction.deactivate;
  return AlarmAction.get;
}

function maintenanceHandlers(member: Member, logger: Logger): GrpcHandlers {
  return {
    'etcdserverpb.Maintenance/Snapshot': snapshotHandler(member, logger),
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
        errors: member.statusErrors(),
        dbSizeInUse: String(status.backendBytesInUse),
        isLearner: status.isLearner,
      };
    },
    'etcdserverpb.Maintenance/HashKV': async (request: WireMessage): Promise<WireMessage> => {
      const hashed = member.hashKv(Number(request.revision ?? 0));
      return {
        header: headerToWire(member.header()),
        hash: String(hashed.hash),
        compactRevision: String(hashed.compactRevision),
      };
    },
    // Alarm, Defragment and MoveLeader are for root only once auth is on: the auth check goes here.
    'etcdserverpb.Maintenance/Alarm': async (request: WireMessage, context): Promise<WireMessage> => {
      const alarm = alarmTypeOf(request.alarm);
      const action = alarmActionOf(request.action);
      // With auth enabled, listing alarms needs a user and changing them needs root, as in the
      // etcd releases after 3.4 (3.4 itself lets anyone call Alarm).
      if (!member.auth.enabled) await refuseUnknownTokenAs(member, context, maintenanceRefusal);
      else if (action === AlarmAction.get) await member.auth.checkUser(context);
      else await member.auth.checkAdmin(context);
      const answer = await member.alarm({ action, memberId: wireId(request.memberID), alarm: alarm ?? AlarmType.none });
      // etcd 3.4 answers Alarm and MoveLeader without a response header (later releases add one).
      return { alarms: answer.alarms.map(alarmMemberToWire) };
    },
    'etcdserverpb.Maintenance/Defragment': async (): Promise<WireMessage> => {
      await member.defragment();
      return { header: headerToWire(member.header()) };
    },
    'etcdserverpb.Maintenance/Hash': async (): Promise<WireMessage> => {
      const hashed = await member.hash();
      return { header: headerToWire(member.header()), hash: String(hashed.hash) };
    },
    'etcdserverpb.Maintenance/MoveLeader': async (request: WireMessage): Promise<WireMessage> => {
      await member.moveLeader(wireId(request.targetID));
      return {};
    },
  };
}

/**
 * Calls only a root-role user may make while auth is enabled: membership changes, Defragment,
 * Hash, HashKV and MoveLeader (etcd's authMaintenanceServer and checkMembershipOperationPermission, with the
 * checks later releases added).
 */
const adminMethods: readonly string[] = [
  'etcdserverpb.Maintenance/Defragment',
  'etcdserverpb.Maintenance/Hash',
  'etcdserverpb.Maintenance/HashKV',
  'etcdserverpb.Maintenance/MoveLeader',
  'etcdserverpb.Cluster/MemberAdd',
  'etcdserverpb.Cluster/MemberRemove',
  'etcdserverpb.Cluster/MemberUpdate',
  'etcdserverpb.Cluster/MemberPromote',
];

/** Maintenance calls whose refusal is the auth package's own error (code Unknown, "auth: ..."). */
const maintenanceMethods: ReadonlySet<string> = new Set([
  'etcdserverpb.Maintenance/HashKV',
  'etcdserverpb.Maintenance/Hash',
  'etcdserverpb.Maintenance/Defragment',
]);

/**
 * Root-only calls that etcd 3.4 still looks up a token for while auth is disabled, refusing one
 * nobody issued (AuthInfoFromCtx); MoveLeader is not among them.
 */
const tokenCheckedAdminMethods: ReadonlySet<string> = new Set(
  adminMethods.filter((method) => method !== 'etcdserverpb.Maintenance/MoveLeader'),
);

/** Calls that need an authenticated user of any role while auth is enabled (requireAuthInfo in later releases). */
const userMethods: readonly string[] = ['etcdserverpb.Maintenance/Status', 'etcdserverpb.Cluster/MemberList'];

function adminGuarded(member: Member, handlers: GrpcHandlers): GrpcHandlers {
  const guarded: Record<string, unknown> = { ...handlers };
  for (const method of adminMethods) {
    const handler = (handlers as Record<string, UnaryHandler | undefined>)[method];
    if (handler === undefined) continue;
    const refusal = maintenanceMethods.has(method) ? maintenanceRefusal : (error: EtcdError) => error;
    const tokenChecked = tokenCheckedAdminMethods.has(method);
    guarded[method] = (async (request, context) => {
      if (member.auth.enabled) await checkAdminAs(member, context, refusal);
      else if (tokenChecked) await refuseUnknownTokenAs(member, context, refusal);
      return handler(request, context);
    }) as UnaryHandler;
  }
  for (const method of userMethods) {
    const handler = (handlers as Record<string, UnaryHandler | undefined>)[method];
    if (handler === undefined) continue;
    guarded[method] = (async (request, context) => {
      if (member.auth.enabled) await member.auth.requireUser(context);
      return handler(request, context);
    }) as UnaryHandler;
  }
  const snapshot = handlers['etcdserverpb.Maintenance/Snapshot'];
  if (snapshot !== undefined) guarded['etcdserverpb.Maintenance/Snapshot'] = adminGuardedStream(member, snapshot);
  return guarded as GrpcHandlers;
}

/** checkAdmin, its refusal told in the words the method's server uses. */
async function checkAdminAs(
  member: Member,
  credentials: CallerCredentials,
  refusal: (error: EtcdError) => EtcdError,
): Promise<void> {
  try {
    await member.auth.checkAdmin(credentials);
  } catch (error) {
    throw error instanceof EtcdError ? refusal(error) : error;
  }
}

/** With auth disabled, a token the call carries that nobody issued, refused in the words of the method's server. */
async function refuseUnknownTokenAs(
  member: Member,
  credentials: CallerCredentials,
  refusal: (error: EtcdError) => EtcdError,
): Promise<void> {
  if (credentials.token === undefined) return;
  try {
    await member.auth.refuseUnknownToken(credentials);
  } catch (error) {
    throw error instanceof EtcdError ? refusal(error) : error;
  }
}

/** Snapshot streams the database, so it needs root too (etcd's authMaintenanceServer). */
function adminGuardedStream(member: Member, handler: StreamHandler): StreamHandler {
  return (call) => {
    if (!member.auth.enabled && call.token === undefined) return handler(call);
    const check = member.auth.enabled
      ? checkAdminAs(member, call, maintenanceRefusal)
      : refuseUnknownTokenAs(member, call, maintenanceRefusal);
    check.then(
      () => handler(call),
      (error: unknown) => {
        const refusal = error instanceof EtcdError ? error : maintenanceRefusal(errors.permissionDenied());
        call.emit('error', { code: refusal.code, details: refusal.message });
      },
    );
  };
}

function clusterHandlers(member: Member): GrpcHandlers {
  // etcd's cluster service fills the header without a revision.
  const header = () => headerToWire({ ...member.header(), revision: 0 });
  const list = (members: ClusterMember[]) => members.map(memberToWire);
  return {
    'etcdserverpb.Cluster/MemberList': async (): Promise<WireMessage> => ({
      header: header(),
      members: list(member.memberList()),
    }),
    'etcdserverpb.Cluster/MemberAdd': async (request: WireMessage): Promise<WireMessage> => {
      const added = await member.addMember(wireUrls(request.peerURLs), request.isLearner === true);
      const { ID, peerURLs, isLearner } = memberToWire(added.member);
      return { header: header(), member: { ID, peerURLs, isLearner }, members: list(added.members) };
    },
    'etcdserverpb.Cluster/MemberRemove': async (request: WireMessage): Promise<WireMessage> => ({
      header: header(),
      members: list(await member.removeMember(wireId(request.ID))),
    }),
    'etcdserverpb.Cluster/MemberUpdate': async (request: WireMessage): Promise<WireMessage> => ({
      header: header(),
      members: list(await member.updateMember(wireId(request.ID), wireUrls(request.peerURLs))),
    }),
    'etcdserverpb.Cluster/MemberPromote': async (request: WireMessage): Promise<WireMessage> => ({
      header: header(),
      members: list(await member.promoteMember(wireId(request.ID))),
    }),
  };
}

/**
 * A learner answers only Status and serializable Range, as etcd's interceptors allow; everything
 * else fails with "rpc not supported for learner".
 */
function learnerGuardedKv(member: Member): KvService {
  const refuse = () => {
    if (member.isLearner()) throw errors.notSupportedForLearner();
  };
  return {
    range: async (request, credentials) => {
      if (!request.serializable) refuse();
      return member.range(request, credentials);
    },
    put: async (request, credentials) => (refuse(), member.put(request, credentials)),
    deleteRange: async (request, credentials) => (refuse(), member.deleteRange(request, credentials)),
    txn: async (request, credentials) => (refuse(), member.txn(request, credentials)),
    compact: async (request, credentials) => (refuse(), member.compact(request, credentials)),
  };
}

function learnerGuarded(member: Member, handlers: GrpcHandlers): GrpcHandlers {
  const guarded: Record<string, UnaryHandler | StreamHandler> = {};
  for (const [method, handler] of Object.entries(handlers) as [string, UnaryHandler | StreamHandler][]) {
    if (method === 'etcdserverpb.Maintenance/Status') {
      guarded[method] = handler;
    } else if (streamingHandler(method)) {
      guarded[method] = ((call: { emit(event: 'error', error: object): boolean }) => {
        if (!member.isLearner()) return (handler as (call: unknown) => void)(call);
        const refusal = errors.notSupportedForLearner();
        call.emit('error', { code: refusal.code, details: refusal.message });
      }) as StreamHandler;
    } else {
      guarded[method] = (async (request, context) => {
        if (member.isLearner()) throw errors.notSupportedForLearner();
        return (handler as UnaryHandler)(request, context);
      }) as UnaryHandler;
    }
  }
  return guarded as GrpcHandlers;
}

function streamingHandler(method: string): boolean {
  return (streamingMethods as readonly string[]).includes(method);
}

/** A watch needs read on its range while auth is enabled; a refusal is its cancel reason (and audited). */
function watchAuthorizer(member: Member, audit: AuditSink | undefined): WatchAuthorizer {
  return {
    checks: (credentials) => member.auth.enabled || credentials.token !== undefined,
    refusal: async (credentials, key, rangeEnd) => {
      const seen = credentialsSeen(credentials);
      try {
        await member.auth.checkRead(seen, key, rangeEnd);
        return undefined;
      } catch (error) {
        if (!(error instanceof EtcdError)) throw error;
        const reason = watchRefusalReason(error);
        audit?.record(watchDenial(credentials, seen, error, key, rangeEnd));
        return reason;
      }
    },
  };
}

/** A watch's credentials, told who the auth layer found the caller to be. */
function credentialsSeen(credentials: CallerCredentials): CallerCredentials & { caller?: string; source?: string } {
  const seen: CallerCredentials & { caller?: string; source?: 'token' | 'certificate' } = {
    token: credentials.token,
    commonName: credentials.commonName,
    noteCaller: (caller, source) => {
      seen.caller = caller.username;
      seen.source = source;
    },
  };
  return seen;
}

function watchDenial(
  credentials: CallerCredentials,
  seen: { caller?: string; source?: string },
  error: EtcdError,
  key: Uint8Array,
  rangeEnd: Uint8Array,
): AuditFields {
  const peer = (credentials as { getPeer?: () => string }).getPeer?.() ?? ':0';
  const method = '/etcdserverpb.Watch/Watch';
  const record: AuditFields = { method, remote: peer, outcome: 'denied', code: error.code as number };
  if (seen.caller !== undefined) {
    record.identity = seen.caller;
    record.identity_source = seen.source as AuditFields['identity_source'];
  }
  return { ...record, ...subjectOf('/etcdserverpb.KV/Range', { key, rangeEnd }) };
}

/**
 * A TLS connection refused before any call (a failed handshake, as for a certificate no trusted CA
 * signed, or a refused host name) is logged as etcd logs it, and audited as denied under the
 * method name tlsHandshakeMethod.
 */
function handshakeDenial(logger: Logger, audit: AuditSink | undefined): (refusal: TlsRefusal) => void {
  return (refusal) => {
    logRejectedConnection(logger, refusal);
    audit?.record({
      method: tlsHandshakeMethod,
      remote: refusal.remote,
      outcome: 'denied',
      code: GrpcCode.unauthenticated,
    });
  };
}

/** The --client-cert-allowed-hostname check for listenClient, when the flag is set. */
function optionalAcceptClient(config: MemberConfig): { acceptClient?: (socket: TLSSocket) => boolean } {
  const acceptClient = allowedHostnameCheck(config.clientTls);
  return acceptClient === undefined ? {} : { acceptClient };
}

/** The client TLS flags in the words of etcd's TLSInfo.String(). */
function describeTls(tls: MemberConfig['clientTls']): string {
  return `cert = ${tls.certFile}, key = ${tls.keyFile}, trusted-ca = ${tls.trustedCaFile}, client-cert-auth = ${tls.clientCertAuth}, crl-file = ${tls.crlFile ?? ''}`;
}

/** etcd's warnings for an http:// client URL on a member that has client TLS flags. */
function warnIgnoredTls(config: MemberConfig, url: string, clientTlsSet: boolean, logger: Logger): void {
  if (clientTlsSet) {
    logger.warn(
      { 'client-url': url },
      'scheme is HTTP while key and cert files are present; ignoring key and cert files',
    );
  }
  if (config.clientTls.clientCertAuth) {
    logger.warn(
      { 'client-url': url },
      'scheme is HTTP while --client-cert-auth is enabled; ignoring client cert auth for this URL',
    );
  }
}

/**
 * Binds the member's client API on each listen-client-url, answering nothing until serve(), and
 * serves /metrics and /health on each listen-metrics-url at once.
 */
export async function startClientServer(config: MemberConfig, member: Member, logger: Logger): Promise<ClientServer> {
  const audit = config.auditLogPath === '' ? undefined : await AuditLog.open(config.auditLogPath, config.name, logger);
  const leaderRequirement = new LeaderRequirement(() => member.hasLeader());
  leaderRequirement.startMonitor(config.electionTimeoutMs);
  const grpcServer = createGrpcServer({
    leaderRequirement,
    kv: learnerGuardedKv(member),
    handlers: learnerGuarded(member, {
      ...adminGuarded(member, { ...maintenanceHandlers(member, logger), ...clusterHandlers(member) }),
      ...authHandlers({ header: () => member.header(), auth: member.auth }),
      ...leaseHandlers(member),
      ...concurrencyHandlers(concurrencyHostFor(member)),
      'etcdserverpb.Watch/Watch': watchHandler({
        header: () => member.header(),
        watchable: member.watchable,
        wake: member.watchDriver.wake,
        progressNotifyIntervalMs: config.watchProgressNotifyIntervalMs,
        maxRequestBytes: config.maxRequestBytes,
        auth: watchAuthorizer(member, audit),
      }),
    }),
    limits: { maxRequestBytes: config.maxRequestBytes, maxTxnOps: config.maxTxnOps },
    healthy: () => member.healthy(),
    logger,
    ...(audit === undefined ? {} : { audit }),
  });
  member.metrics.attachGrpc(grpcServer);
  const health = (excludedAlarms: ReadonlySet<string>): HealthReport => {
    const reason = member.unhealthyReason(excludedAlarms);
    member.metrics.countHealthCheck(reason === undefined);
    return reason === undefined ? { health: true, reason: '' } : { health: false, reason };
  };
  // One feed per member: every client and metrics URL serves the same dashboard.
  const dashboard = new DashboardFeed({
    memberId: formatId(member.identity.memberId),
    clusterView: () => member.clusterView(),
    timeline: member.timeline,
  });
  const listeners: (ClientListener | MetricsListener)[] = [];
  const clientListeners: { listener: ClientListener; address: string; secure: boolean }[] = [];
  const gateways: JsonGateway[] = [];
  const urls: string[] = [];
  const http2 = http2ServerOptions(config);
  const clientTlsSet = config.clientTls.certFile !== '' || config.clientTls.keyFile !== '';
  if (clientTlsSet) logger.info({ 'tls-info': describeTls(config.clientTls) }, 'starting with client TLS');
  for (const text of config.listenClientUrls) {
    const url = new URL(text);
    if (!['http:', 'https:', 'unix:', 'unixs:'].includes(url.protocol)) {
      throw new Error(`listen-client-urls ${text}: only http, https, unix and unixs URLs are served`);
    }
    const secure = url.protocol === 'https:' || url.protocol === 'unixs:';
    // etcd listens on unix://<host><path> as a socket file of that (often relative) name.
    const socketPath = url.protocol.startsWith('unix') ? url.host + url.pathname : undefined;
    if (!secure) warnIgnoredTls(config, text, clientTlsSet, logger);
    // Read per listener, as etcd's ServerConfig does: a missing file fails the start with Go's text.
    const material = secure ? readClientTlsMaterial(config.clientTls) : undefined;
    // The JSON gateway calls this member's own gRPC port, as etcd's gateway does.
    let boundPort = 0;
    const gateway = createJsonGateway({
      target: () => (socketPath === undefined ? gatewayTarget(bindHost(url), boundPort) : `unix:${socketPath}`),
      refuseCommonNames: () => config.clientTls.clientCertAuth && member.auth.enabled,
      ...(material === undefined ? {} : { credentials: gatewayCredentials(material) }),
    });
    const listener = await listenClient({
      host: bindHost(url),
      port: Number(url.port),
      ...(socketPath === undefined ? {} : { path: socketPath }),
      grpcServer,
      http2,
      http: {
        health,
        clusterVersion: () => member.clusterVersion(),
        // --enable-grpc-gateway=false leaves the JSON gateway's /v3/ paths unserved, as in etcd.
        routes: {
          ...(config.enableGrpcGateway ? gateway.routes : {}),
          '/metrics': metricsRoute(member.metrics),
          ...dashboard.routes(),
        },
        cors: config.cors,
        hostWhitelist: config.hostWhitelist,
      },
      ...(material === undefined ? {} : { tls: serverTlsOptions(material) }),
      ...(material === undefined ? {} : optionalAcceptClient(config)),
      ...(material === undefined ? {} : { onRefusedConnection: handshakeDenial(logger, audit) }),
      waitForServe: true,
    });
    boundPort = listener.port;
    gateways.push(gateway);
    listeners.push(listener);
    urls.push(socketPath === undefined ? `${url.protocol}//${url.hostname}:${listener.port}` : text);
    clientListeners.push({ listener, address: socketPath ?? `${bindHost(url)}:${listener.port}`, secure });
  }
  const metricsUrls: string[] = [];
  for (const text of config.listenMetricsUrls) {
    const url = new URL(text);
    const material = url.protocol === 'https:' ? readClientTlsMaterial(config.clientTls) : undefined;
    const listener = await listenMetrics({
      host: bindHost(url),
      port: Number(url.port),
      metrics: member.metrics,
      health,
      routes: dashboard.routes(),
      ...(material === undefined ? {} : { tls: serverTlsOptions(material) }),
    });
    listeners.push(listener);
    const served = `${url.protocol}//${url.hostname}:${listener.port}`;
    metricsUrls.push(served);
    logger.info({ address: served }, 'serving metrics');
  }
  logger.info(
    {
      'local-member-id': formatId(member.identity.memberId),
      'initial-advertise-peer-urls': config.initialAdvertisePeerUrls,
      'listen-peer-urls': config.listenPeerUrls,
      'advertise-client-urls': config.advertiseClientUrls,
      'listen-client-urls': config.listenClientUrls,
      'listen-metrics-urls': config.listenMetricsUrls,
    },
    'now serving peer/client/metrics',
  );
  for (const address of member.peerServingAddresses()) logger.info({ address }, 'serving peer traffic');
  return {
    urls,
    metricsUrls,
    serve: () => {
      // Per client listener, as etcd 3.5 (and 3.4 with --logger=capnslog) logs readiness; etcd
      // 3.4's zap logger writes only the line after it.
      for (const { listener, address, secure } of clientListeners) {
        logger.info({}, 'ready to serve client requests');
        listener.serve();
        logger.info(
          { address },
          secure
            ? 'serving client traffic securely'
            : 'serving client traffic insecurely; this is strongly discouraged!',
        );
      }
    },
    close: async () => {
      leaderRequirement.stop();
      dashboard.close();
      for (const gateway of gateways) gateway.close();
      await Promise.all(listeners.map((listener) => listener.close()));
      await audit?.close();
    },
  };
}
