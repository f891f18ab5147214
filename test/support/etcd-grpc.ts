/**
 * A raw gRPC client for every etcd v3 service (@grpc/grpc-js over tsetcd's copy of etcd's protos)
 * that sends an optional auth token with each call and reports every answer as a code and a
 * message instead of throwing, so tests can compare refusals as well as successes.
 */
import * as grpc from '@grpc/grpc-js';
import { loadProtos, type GrpcMethod, type WireMessage } from '../../src/api/proto-wire.js';

/** Every call gives up after this long; an answer that never comes is reported as DEADLINE_EXCEEDED. */
export const callDeadlineMsDefault = 5_000;

/** What one call answered: code 0 with the response, or the error's code and message. */
export interface Answer {
  readonly code: grpc.status;
  readonly message: string;
  readonly response: WireMessage;
}

type AnyClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;
type ServiceConstructor = new (address: string, credentials: grpc.ChannelCredentials) => AnyClient;

/** `code message` for errors and `OK` for successes (with a note, e.g. a stream that ended empty). */
export function describeAnswer(answer: Answer): string {
  if (answer.code !== grpc.status.OK) return `${grpc.status[answer.code]} ${answer.message}`;
  return answer.message === '' ? 'OK' : `OK (${answer.message})`;
}

/** One connection per service to one endpoint. */
export class EtcdGrpc {
  private readonly clients = new Map<string, AnyClient>();

  private readonly address: string;

  /**
   * `endpoint` is a client URL (http://host:port) or host:port. `metadata` goes with every call,
   * e.g. clientv3's WithRequireLeader as { hasleader: 'true' }.
   */
  constructor(
    endpoint: string,
    private readonly deadlineMs = callDeadlineMsDefault,
    private readonly metadata: Readonly<Record<string, string>> = {},
  ) {
    this.address = endpoint.replace(/^https?:\/\//, '');
  }

  /** A unary call, with `token` as etcd's `token` metadata when given. */
  unary(method: GrpcMethod, request: WireMessage, token?: string): Promise<Answer> {
    const { client, name } = this.resolve(method);
    return new Promise((resolve) => {
      client[name]?.(
        request,
        this.metadataFor(token),
        { deadline: this.deadline() },
        (error: grpc.ServiceError | null, response: WireMessage) => resolve(answerOf(error, response)),
      );
    });
  }

  /**
   * The first answer of a streaming call: for a bidirectional stream (Watch, LeaseKeepAlive) the
   * request is written once; for a server stream (Snapshot, Observe) it is the call's request.
   * The stream is cancelled once the first message or error arrives.
   */
  firstOfStream(method: GrpcMethod, request: WireMessage, token?: string): Promise<Answer> {
    const { client, name } = this.resolve(method);
    const bidirectional = method === 'etcdserverpb.Watch/Watch' || method === 'etcdserverpb.Lease/LeaseKeepAlive';
    const options = { deadline: this.deadline() };
    const call = (
      bidirectional
        ? client[name]?.(this.metadataFor(token), options)
        : client[name]?.(request, this.metadataFor(token), options)
    ) as grpc.ClientDuplexStream<WireMessage, WireMessage> | grpc.ClientReadableStream<WireMessage>;
    return new Promise((resolve) => {
      let settled = false;
      const settle = (answer: Answer): void => {
        if (settled) return;
        settled = true;
        resolve(answer);
        call.cancel();
      };
      call.on('data', (response: WireMessage) => settle(answerOf(null, response)));
      call.on('error', (error: grpc.ServiceError) => settle(answerOf(error, {})));
      call.on('end', () => settle({ code: grpc.status.OK, message: 'stream ended without a message', response: {} }));
      if (bidirectional) (call as grpc.ClientDuplexStream<WireMessage, WireMessage>).write(request);
    });
  }

  /** Closes every connection. */
  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  private metadataFor(token: string | undefined): grpc.Metadata {
    const metadata = new grpc.Metadata();
    for (const [key, value] of Object.entries(this.metadata)) metadata.set(key, value);
    if (token !== undefined) metadata.set('token', token);
    return metadata;
  }

  private deadline(): Date {
    return new Date(Date.now() + this.deadlineMs);
  }

  /** The client for the method's service (created on first use) and the method's name on it. */
  private resolve(method: GrpcMethod): { client: AnyClient; name: string } {
    const [servicePath = '', name = ''] = method.split('/');
    let client = this.clients.get(servicePath);
    if (client === undefined) {
      let node: unknown = grpc.loadPackageDefinition(loadProtos());
      for (const part of servicePath.split('.')) node = (node as Record<string, unknown>)[part];
      if (typeof node !== 'function') throw new Error(`expected a gRPC service at ${servicePath}`);
      client = new (node as ServiceConstructor)(this.address, grpc.credentials.createInsecure());
      this.clients.set(servicePath, client);
    }
    return { client, name };
  }
}

function answerOf(error: grpc.ServiceError | null, response: WireMessage | undefined): Answer {
  if (error !== null) return { code: error.code, message: error.details, response: {} };
  return { code: grpc.status.OK, message: '', response: response ?? {} };
}
