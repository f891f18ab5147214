/**
 * The gRPC side of tsetcdctl: dials endpoints, sends the unary calls that have codecs
 * (unary-codecs.ts) over node:http2 (grpc-unary.ts) and everything else through grpc-js with our
 * etcd v3 protos, both loaded only then, and turns failures into the error text etcdctl's Go
 * client would print ("etcdserver: ..." or "rpc error: ...").
 */
import type * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import { join } from 'node:path';
import { errors, grpcCodeNames } from '../src/api/errors.js';
import { packageRoot } from '../src/lib/paths.js';
import { GrpcStatusError, UnaryChannel, endpointHost, grpcFrameHeaderBytes, grpcStatus } from './grpc-unary.js';
import { grpcJs, protoLoaderJs } from './lazy-modules.js';
import { monotonicMs } from './monotonic-clock.js';
import { endpointListTarget } from './endpoint-resolver.js';
import { channelCredentials, type ClientTls, type UserCredentials } from './security.js';
import { unaryCodecs, type UnaryCodec } from './unary-codecs.js';

/** A decoded protobuf message: keepCase field names, int64 as decimal strings, bytes as Buffers. */
export type Message = Record<string, any>;

let cachedDefinition: protoLoader.PackageDefinition | undefined;

/** How the protos load: field names and 64-bit values exact, as the printers expect them. */
function loadOptions(): protoLoader.Options {
  return {
    includeDirs: [join(packageRoot(), 'src', 'api', 'proto')],
    keepCase: true,
    longs: String,
    bytes: Buffer,
    enums: Number,
    defaults: true,
    oneofs: true,
  };
}

/** etcd's v3 protos, loaded once with options that keep field names and 64-bit values exact. */
export function packageDefinition(): protoLoader.PackageDefinition {
  cachedDefinition ??= protoLoaderJs().loadSync('etcdserverpb/rpc.proto', loadOptions());
  return cachedDefinition;
}

export type ServiceName = 'KV' | 'Watch' | 'Lease' | 'Maintenance' | 'Cluster' | 'Auth' | 'Lock' | 'Election';

/** The proto package of each service; lock and election come from protos of their own. */
const servicePackages: Record<ServiceName, string> = {
  KV: 'etcdserverpb',
  Watch: 'etcdserverpb',
  Lease: 'etcdserverpb',
  Maintenance: 'etcdserverpb',
  Cluster: 'etcdserverpb',
  Auth: 'etcdserverpb',
  Lock: 'v3lockpb',
  Election: 'v3electionpb',
};

let cachedConcurrencyDefinition: protoLoader.PackageDefinition | undefined;

/** The lock and election protos, loaded only by the commands that use them. */
function concurrencyDefinition(): protoLoader.PackageDefinition {
  cachedConcurrencyDefinition ??= protoLoaderJs().loadSync(
    ['v3lockpb/v3lock.proto', 'v3electionpb/v3election.proto'],
    loadOptions(),
  );
  return cachedConcurrencyDefinition;
}

/** The client error etcdctl prints after "Error: ". */
export class CtlRpcError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CtlRpcError';
  }
}

/** A failure while setting the client up (authentication), which etcdctl reports with exit code 2. */
export class CtlDialError extends CtlRpcError {
  constructor(message: string) {
    super(message);
    this.name = 'CtlDialError';
  }
}

/** clientv3 goes on without a token when the cluster answers that auth is off. */
const authNotEnabledText = errors.authNotEnabled().message;
/** The answers after which clientv3 authenticates again and resends the call. */
const tokenRefreshTexts: ReadonlySet<string> = new Set([
  errors.invalidAuthToken().message,
  errors.authOldRevision().message,
  errors.userEmpty().message,
]);
/** Fresh tokens one call may fetch: one is enough unless the auth store keeps moving under it. */
const tokenRefreshesMax = 3;

/** How one connection is secured and whom it authenticates as. */
export interface ConnectionOptions {
  /** TLS for these endpoints; plaintext when undefined. */
  tls?: ClientTls;
  /** The user to authenticate as (asked once per command, shared by its connections). */
  user?: () => Promise<UserCredentials | undefined>;
  /** Deadline of the Authenticate call, etcdctl's --dial-timeout. */
  dialTimeoutMs?: number;
  /** etcdctl's --keepalive-time and --keepalive-timeout: HTTP/2 pings while calls are open. */
  keepAliveTimeMs?: number;
  keepAliveTimeoutMs?: number;
}

/** Maps a gRPC failure (grpc-js's ServiceError or grpc-unary's GrpcStatusError) to the text of the error clientv3 returns for it. */
export function clientErrorText(error: { readonly code: number; readonly details: string }): string {
  // clientv3 turns every server error it knows (all spelled "etcdserver: ...") into its bare text.
  if (error.details.startsWith('etcdserver: ')) return error.details;
  // An expired call deadline surfaces as the Go context's own error.
  if (error.code === grpcStatus.deadlineExceeded || error.code === grpcStatus.cancelled)
    return 'context deadline exceeded';
  return `rpc error: code = ${grpcCodeNames[error.code] ?? `Code(${error.code})`} desc = ${error.details}`;
}

/**
 * The client error text of a failed call or stream (grpc-js fails a stream with a ServiceError). A
 * refused authentication (exit 2 in main) and anything that is not a call failure go up as they are.
 */
export function rpcErrorText(error: unknown): string {
  if (error instanceof CtlRpcError && !(error instanceof CtlDialError)) return error.message;
  const status = error as Partial<grpc.ServiceError> | undefined;
  if (typeof status?.code === 'number' && typeof status.details === 'string')
    return clientErrorText({ code: status.code, details: status.details });
  throw error;
}

/**
 * Turns "http://127.0.0.1:2379", "127.0.0.1:2379" or "unix://path" into a gRPC target; endpoints
 * other than unix sockets (IP literals of either family or host names) go to the endpoint-list resolver.
 */
export function grpcTarget(endpoints: readonly string[]): string {
  const first = endpoints[0]?.trim() ?? '';
  // clientv3 dials unix:// and unixs:// endpoints as the socket path host + path.
  if (/^unixs?:\/\//.test(first)) return `unix:${first.replace(/^unixs?:\/\//, '')}`;
  const hosts = endpoints.map((endpoint) => endpoint.trim().replace(/^(https?|unixs?):\/\//, ''));
  // Even one endpoint goes through the list resolver: grpc-js's dns: target looks names up with getaddrinfo.
  return endpointListTarget(hosts.length > 0 ? hosts : ['127.0.0.1:2379']);
}

/** grpc-go's smallest client keepalive time. */
const keepAliveTimeMinMs = 10_000;

/**
 * clientv3's keepalive: pings only with --keepalive-time above zero, never more often than
 * grpc-go allows (its 10 s floor, so etcdctl's 2 s default pings every 10 s), and a zero
 * --keepalive-timeout leaves grpc-go's default of 20 s, which is grpc-js's default too.
 */
function keepAliveOptions(options: ConnectionOptions): grpc.ChannelOptions {
  const timeMs = options.keepAliveTimeMs ?? 0;
  if (timeMs <= 0) return {};
  const timeoutMs = options.keepAliveTimeoutMs ?? 0;
  return {
    'grpc.keepalive_time_ms': Math.max(timeMs, keepAliveTimeMinMs),
    ...(timeoutMs > 0 ? { 'grpc.keepalive_timeout_ms': timeoutMs } : {}),
  };
}

/**
 * One connection to a set of endpoints, with etcdctl's per-call deadline semantics. With several
 * endpoints the channel takes the first that answers and moves to the next when it fails, as
 * clientv3's balancer does.
 */
export class EtcdConnection {
  private readonly clients = new Map<ServiceName, grpc.Client>();
  private channel: grpc.Channel | undefined;
  /** The connection for the calls with codecs, made on the first of them. */
  private unaryChannel: UnaryChannel | undefined;
  private closed = false;
  private token: Promise<string | undefined> | undefined;

  constructor(
    readonly endpoints: readonly string[],
    private readonly options: ConnectionOptions = {},
  ) {}

  /** Opens the grpc-js channel on first use: only streams and the calls without a codec need it. */
  private ready(): Promise<void> {
    if (this.channel === undefined) this.openChannel(grpcTarget(this.endpoints));
    return Promise.resolve();
  }

  private openChannel(target: string): void {
    const channelOptions: grpc.ChannelOptions = {};
    // clientv3 verifies the server's certificate against the discovery domain (--discovery-srv
    // with --insecure-discovery=false), else against the first endpoint's host. grpc-js sends the
    // name as SNI too; Go's servers refuse a ClientHello whose SNI ends in a dot (an SRV target's
    // root dot), and Go's clients leave it out, so it goes without.
    const serverName = this.options.tls?.serverName ?? endpointHost(this.endpoints[0] ?? '');
    if (this.options.tls !== undefined) channelOptions['grpc.ssl_target_name_override'] = serverName.replace(/\.$/, '');
    // etcd serves no gRPC service config in DNS; asking for one only delays the dial.
    channelOptions['grpc.service_config_disable_resolution'] = 1;
    Object.assign(channelOptions, keepAliveOptions(this.options));
    this.channel = new (grpcJs().Channel)(target, channelCredentials(this.options.tls), channelOptions);
    if (this.closed) this.channel.close();
  }

  /**
   * Calls a unary method; `timeoutMs` undefined means no deadline, as for etcdctl's txn. An abort
   * of `signal` cancels the call (it then fails with gRPC's CANCELLED).
   */
  async call(
    service: ServiceName,
    method: string,
    request: Message,
    timeoutMs: number | undefined,
    signal?: AbortSignal,
  ): Promise<Message> {
    const deadline = timeoutMs === undefined ? undefined : monotonicMs() + timeoutMs;
    for (let refreshes = 0; ; refreshes++) {
      this.token ??= this.authenticate(this.options.dialTimeoutMs);
      const token = await this.token;
      // Whole milliseconds: grpc-go refuses a fractional grpc-timeout.
      const remainingMs =
        deadline === undefined || refreshes === 0 ? timeoutMs : Math.max(1, Math.ceil(deadline - monotonicMs()));
      try {
        return await this.unary(service, method, request, remainingMs, token, signal);
      } catch (error) {
        // clientv3's retry interceptor: a token the server no longer takes (expired, or older
        // than the auth store) is fetched anew and the call sent again, within the same deadline.
        const stale = error instanceof CtlRpcError && tokenRefreshTexts.has(error.message);
        if (!stale || refreshes >= tokenRefreshesMax || !(await this.hasCredentials())) throw error;
        this.token = undefined;
      }
    }
  }

  /** Opens a server stream (Observe, Snapshot), authenticated like the unary calls. */
  async serverStream(
    service: ServiceName,
    method: string,
    request: Message,
    timeoutMs?: number,
  ): Promise<grpc.ClientReadableStream<Message>> {
    await this.ready();
    const token = await this.streamToken();
    const client = this.client(service);
    const metadata = new (grpcJs().Metadata)({ waitForReady: true });
    if (token !== undefined) metadata.set('token', token);
    const callable = (client as any)[method] as (
      request: Message,
      metadata: grpc.Metadata,
      options: grpc.CallOptions,
    ) => grpc.ClientReadableStream<Message>;
    const options: grpc.CallOptions = timeoutMs === undefined ? {} : { deadline: Date.now() + timeoutMs };
    return callable.call(client, request, metadata, options);
  }

  /**
   * The token a new stream carries. clientv3 authenticates anew before it opens any stream (its
   * stream interceptor's getToken), so a stream opened long after the last call, or opened again
   * after a broken one, never starts with an expired token; later calls use the new token too.
   */
  private async streamToken(): Promise<string | undefined> {
    // Like clientv3's, it waits as long as the stream would: a stream has no deadline.
    if (this.token === undefined || (await this.hasCredentials())) this.token = this.authenticate(undefined);
    return this.token;
  }

  /** Whether the command names a user and password, without which clientv3 never authenticates. */
  private async hasCredentials(): Promise<boolean> {
    const user = await this.options.user?.();
    return user !== undefined && user.username !== '' && user.password !== '';
  }

  /**
   * clientv3's getToken: Authenticate, then send the token as `token` metadata on every call. The
   * first one is made as the client is dialled, within the dial timeout.
   */
  private async authenticate(timeoutMs: number | undefined): Promise<string | undefined> {
    const user = await this.options.user?.();
    if (user === undefined || !(await this.hasCredentials())) return undefined;
    const request = { name: user.username, password: user.password };
    try {
      const response = await this.unary('Auth', 'Authenticate', request, timeoutMs, undefined);
      return String(response.token);
    } catch (error) {
      if (error instanceof CtlRpcError && error.message === authNotEnabledText) return undefined;
      throw new CtlDialError(error instanceof Error ? error.message : String(error));
    }
  }

  /** One unary call: over node:http2 when the method has a codec, else through grpc-js. */
  private async unary(
    service: ServiceName,
    method: string,
    request: Message,
    timeoutMs: number | undefined,
    token: string | undefined,
    signal?: AbortSignal,
  ): Promise<Message> {
    const codec = unaryCodecs[`${service}/${method}`];
    if (codec !== undefined) return this.sendWithCodec(codec, service, method, request, timeoutMs, token, signal);
    await this.ready();
    return this.send(service, method, request, timeoutMs, token, signal);
  }

  private async sendWithCodec(
    codec: UnaryCodec,
    service: ServiceName,
    method: string,
    request: Message,
    timeoutMs: number | undefined,
    token: string | undefined,
    signal?: AbortSignal,
  ): Promise<Message> {
    const keepAlive = keepAliveOptions(this.options);
    const keepAliveTimeMs = keepAlive['grpc.keepalive_time_ms'];
    const keepAliveTimeoutMs = keepAlive['grpc.keepalive_timeout_ms'];
    this.unaryChannel ??= new UnaryChannel(this.endpoints, {
      ...(this.options.tls === undefined ? {} : { tls: this.options.tls }),
      ...(keepAliveTimeMs === undefined ? {} : { keepAliveTimeMs }),
      ...(keepAliveTimeoutMs === undefined ? {} : { keepAliveTimeoutMs }),
    });
    if (this.closed) this.unaryChannel.close();
    const path = `/${servicePackages[service]}.${service}/${method}`;
    const body = codec.encode(request, grpcFrameHeaderBytes);
    try {
      const response = await this.unaryChannel.call(
        path,
        body,
        token === undefined ? {} : { token },
        timeoutMs,
        signal,
      );
      return codec.decode(response);
    } catch (error) {
      if (error instanceof GrpcStatusError) throw new CtlRpcError(clientErrorText(error));
      throw error;
    }
  }

  private send(
    service: ServiceName,
    method: string,
    request: Message,
    timeoutMs: number | undefined,
    token: string | undefined,
    signal?: AbortSignal,
  ): Promise<Message> {
    const client = this.client(service);
    const options: grpc.CallOptions = timeoutMs === undefined ? {} : { deadline: Date.now() + timeoutMs };
    return new Promise((resolve, reject) => {
      const callable = (client as any)[method] as (...args: unknown[]) => unknown;
      const metadata = new (grpcJs().Metadata)({ waitForReady: true });
      if (token !== undefined) metadata.set('token', token);
      const call = callable.call(
        client,
        request,
        metadata,
        options,
        (error: grpc.ServiceError | null, response: Message) => {
          if (error !== null) reject(new CtlRpcError(clientErrorText(error)));
          else resolve(response);
        },
      ) as grpc.ClientUnaryCall;
      // An abort that came while the token was fetched cancels the call as soon as it exists.
      if (signal?.aborted === true) call.cancel();
      else signal?.addEventListener('abort', () => call.cancel(), { once: true });
    });
  }

  /**
   * Opens a bidirectional stream (LeaseKeepAlive, Watch), authenticated like the unary calls;
   * `requireLeader` sends clientv3's WithRequireLeader metadata.
   */
  async duplex(
    service: ServiceName,
    method: string,
    requireLeader = false,
  ): Promise<grpc.ClientDuplexStream<Message, Message>> {
    await this.ready();
    const token = await this.streamToken();
    const client = this.client(service);
    const metadata = new (grpcJs().Metadata)({ waitForReady: true });
    if (token !== undefined) metadata.set('token', token);
    if (requireLeader) metadata.set('hasleader', 'true');
    const callable = (client as any)[method] as (metadata: grpc.Metadata) => grpc.ClientDuplexStream<Message, Message>;
    return callable.call(client, metadata);
  }

  /** The protobuf encoding of a response, for `-w protobuf`. */
  serializeResponse(service: ServiceName, method: string, response: Message): Buffer {
    const definition = packageDefinition()[`etcdserverpb.${service}`] as protoLoader.ServiceDefinition;
    const methodDefinition = definition[method];
    if (methodDefinition === undefined) throw new Error(`expected method ${service}.${method} in the protos`);
    return methodDefinition.responseSerialize(response);
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.closed = true;
    this.channel?.close();
    this.unaryChannel?.close();
  }

  private client(service: ServiceName): grpc.Client {
    const existing = this.clients.get(service);
    if (existing !== undefined) return existing;
    const protoPackage = servicePackages[service];
    const definition = protoPackage === 'etcdserverpb' ? packageDefinition() : concurrencyDefinition();
    const loaded = grpcJs().loadPackageDefinition(definition) as any;
    const constructor = loaded[protoPackage][service] as grpc.ServiceClientConstructor;
    if (this.channel === undefined) throw new Error('expected the channel to be open before a call');
    const client = new constructor('unused', channelCredentials(this.options.tls), { channelOverride: this.channel });
    this.clients.set(service, client);
    return client;
  }
}
