/**
 * The gRPC side of tsetcdctl: loads our etcd v3 protos, dials endpoints and turns failures into
 * the error text etcdctl's Go client would print ("etcdserver: ..." or "rpc error: ...").
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { join } from 'node:path';
import { packageRoot } from '../src/lib/paths.js';

/** A decoded protobuf message: keepCase field names, int64 as decimal strings, bytes as Buffers. */
export type Message = Record<string, any>;

let cachedDefinition: protoLoader.PackageDefinition | undefined;

/** etcd's v3 protos, loaded once with options that keep field names and 64-bit values exact. */
export function packageDefinition(): protoLoader.PackageDefinition {
  cachedDefinition ??= protoLoader.loadSync('etcdserverpb/rpc.proto', {
    includeDirs: [join(packageRoot(), 'src', 'api', 'proto')],
    keepCase: true,
    longs: String,
    bytes: Buffer,
    enums: Number,
    defaults: true,
    oneofs: true,
  });
  return cachedDefinition;
}

type ServiceName = 'KV' | 'Maintenance' | 'Cluster';

/** The client error etcdctl prints after "Error: ". */
export class CtlRpcError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CtlRpcError';
  }
}

const goCodeNames = [
  'OK',
  'Canceled',
  'Unknown',
  'InvalidArgument',
  'DeadlineExceeded',
  'NotFound',
  'AlreadyExists',
  'PermissionDenied',
  'ResourceExhausted',
  'FailedPrecondition',
  'Aborted',
  'OutOfRange',
  'Unimplemented',
  'Internal',
  'Unavailable',
  'DataLoss',
  'Unauthenticated',
];

/** Maps a gRPC failure to the text of the error clientv3 returns for it. */
export function clientErrorText(error: grpc.ServiceError): string {
  // clientv3 turns every server error it knows (all spelled "etcdserver: ...") into its bare text.
  if (error.details.startsWith('etcdserver: ')) return error.details;
  // An expired call deadline surfaces as the Go context's own error.
  if (error.code === grpc.status.DEADLINE_EXCEEDED || error.code === grpc.status.CANCELLED)
    return 'context deadline exceeded';
  return `rpc error: code = ${goCodeNames[error.code] ?? `Code(${error.code})`} desc = ${error.details}`;
}

/** Turns "http://127.0.0.1:2379" or "127.0.0.1:2379" into a gRPC target. */
export function grpcTarget(endpoints: readonly string[]): string {
  const hosts = endpoints.map((endpoint) => endpoint.trim().replace(/^(https?|unixs?):\/\//, ''));
  // grpc-js dials a list only as IP literals; a named host is dialled on its own.
  if (hosts.length > 1 && hosts.every((host) => /^\d+\.\d+\.\d+\.\d+:\d+$/.test(host)))
    return `ipv4:${hosts.join(',')}`;
  return `dns:${hosts[0] ?? '127.0.0.1:2379'}`;
}

/** One connection to a set of endpoints, with etcdctl's per-call deadline semantics. */
export class EtcdConnection {
  private readonly clients = new Map<ServiceName, grpc.Client>();
  private readonly channel: grpc.Channel;

  constructor(readonly endpoints: readonly string[]) {
    this.channel = new grpc.Channel(grpcTarget(endpoints), grpc.credentials.createInsecure(), {});
  }

  /** Calls a unary method; `timeoutMs` undefined means no deadline, as for etcdctl's txn. */
  call(service: ServiceName, method: string, request: Message, timeoutMs: number | undefined): Promise<Message> {
    const client = this.client(service);
    const options: grpc.CallOptions = timeoutMs === undefined ? {} : { deadline: Date.now() + timeoutMs };
    return new Promise((resolve, reject) => {
      const callable = (client as any)[method] as (...args: unknown[]) => unknown;
      const metadata = new grpc.Metadata({ waitForReady: true });
      callable.call(client, request, metadata, options, (error: grpc.ServiceError | null, response: Message) => {
        if (error !== null) reject(new CtlRpcError(clientErrorText(error)));
        else resolve(response);
      });
    });
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
    this.channel.close();
  }

  private client(service: ServiceName): grpc.Client {
    const existing = this.clients.get(service);
    if (existing !== undefined) return existing;
    const loaded = grpc.loadPackageDefinition(packageDefinition()) as any;
    const constructor = loaded.etcdserverpb[service] as grpc.ServiceClientConstructor;
    const client = new constructor('unused', grpc.credentials.createInsecure(), { channelOverride: this.channel });
    this.clients.set(service, client);
    return client;
  }
}
