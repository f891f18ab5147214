/**
 * etcd's gRPC JSON gateway on the client port. Like etcd, which dials its own gRPC server for
 * this, each POST /v3/... is turned into a call on the member's own gRPC listener, so JSON
 * clients pass through exactly the checks, guards and limits gRPC clients do. Unary answers are
 * one JSON object; stream answers are newline-delimited `{"result": ...}` objects.
 */
import { gatewayMarkerHeader } from './grpc/calls.js';
import { gatewayAuditHeaders, gatewayAuditSecret } from './grpc/audit-hook.js';
import { verifiedCommonName } from './tls.js';
import type * as grpc from '@grpc/grpc-js';
import { grpcJs } from './grpc-js.js';
import * as http from 'node:http';
import { readBodyBounded } from '../shared/http-body.js';
import type protobuf from 'protobufjs';
import {
  decodeToJson,
  encodeJsonRequest,
  GatewayJsonError,
  gatewayProtoRoot,
  goJsonString,
  readJsonPrefix,
  type JsonPrefix,
} from '../../src/api/jsonpb.js';
import { gatewayTexts, GrpcCode, grpcTexts } from '../../src/api/errors.js';
import { unexpectedEofText } from '../../src/lib/protobuf.js';

/**
 * The paths etcd 3.4's google.api.http annotations give each method (none for the later AuthStatus
 * and Downgrade). Hash and HashKV share one
 * path and grpc-gateway matches the first registered, so the path reaches Hash.
 */
export const gatewayPaths: Readonly<Record<string, string>> = {
  '/v3/kv/range': 'etcdserverpb.KV/Range',
  '/v3/kv/put': 'etcdserverpb.KV/Put',
  '/v3/kv/deleterange': 'etcdserverpb.KV/DeleteRange',
  '/v3/kv/txn': 'etcdserverpb.KV/Txn',
  '/v3/kv/compaction': 'etcdserverpb.KV/Compact',
  '/v3/watch': 'etcdserverpb.Watch/Watch',
  '/v3/lease/grant': 'etcdserverpb.Lease/LeaseGrant',
  '/v3/lease/revoke': 'etcdserverpb.Lease/LeaseRevoke',
  '/v3/kv/lease/revoke': 'etcdserverpb.Lease/LeaseRevoke',
  '/v3/lease/keepalive': 'etcdserverpb.Lease/LeaseKeepAlive',
  '/v3/lease/timetolive': 'etcdserverpb.Lease/LeaseTimeToLive',
  '/v3/kv/lease/timetolive': 'etcdserverpb.Lease/LeaseTimeToLive',
  '/v3/lease/leases': 'etcdserverpb.Lease/LeaseLeases',
  '/v3/kv/lease/leases': 'etcdserverpb.Lease/LeaseLeases',
  '/v3/cluster/member/add': 'etcdserverpb.Cluster/MemberAdd',
  '/v3/cluster/member/remove': 'etcdserverpb.Cluster/MemberRemove',
  '/v3/cluster/member/update': 'etcdserverpb.Cluster/MemberUpdate',
  '/v3/cluster/member/list': 'etcdserverpb.Cluster/MemberList',
  '/v3/cluster/member/promote': 'etcdserverpb.Cluster/MemberPromote',
  '/v3/maintenance/alarm': 'etcdserverpb.Maintenance/Alarm',
  '/v3/maintenance/status': 'etcdserverpb.Maintenance/Status',
  '/v3/maintenance/defragment': 'etcdserverpb.Maintenance/Defragment',
  '/v3/maintenance/hash': 'etcdserverpb.Maintenance/Hash',
  '/v3/maintenance/snapshot': 'etcdserverpb.Maintenance/Snapshot',
  '/v3/maintenance/transfer-leadership': 'etcdserverpb.Maintenance/MoveLeader',
  '/v3/auth/enable': 'etcdserverpb.Auth/AuthEnable',
  '/v3/auth/disable': 'etcdserverpb.Auth/AuthDisable',
  '/v3/auth/authenticate': 'etcdserverpb.Auth/Authenticate',
  '/v3/auth/user/add': 'etcdserverpb.Auth/UserAdd',
  '/v3/auth/user/get': 'etcdserverpb.Auth/UserGet',
  '/v3/auth/user/list': 'etcdserverpb.Auth/UserList',
  '/v3/auth/user/delete': 'etcdserverpb.Auth/UserDelete',
  '/v3/auth/user/changepw': 'etcdserverpb.Auth/UserChangePassword',
  '/v3/auth/user/grant': 'etcdserverpb.Auth/UserGrantRole',
  '/v3/auth/user/revoke': 'etcdserverpb.Auth/UserRevokeRole',
  '/v3/auth/role/add': 'etcdserverpb.Auth/RoleAdd',
  '/v3/auth/role/get': 'etcdserverpb.Auth/RoleGet',
  '/v3/auth/role/list': 'etcdserverpb.Auth/RoleList',
  '/v3/auth/role/delete': 'etcdserverpb.Auth/RoleDelete',
  '/v3/auth/role/grant': 'etcdserverpb.Auth/RoleGrantPermission',
  '/v3/auth/role/revoke': 'etcdserverpb.Auth/RoleRevokePermission',
  '/v3/lock/lock': 'v3lockpb.Lock/Lock',
  '/v3/lock/unlock': 'v3lockpb.Lock/Unlock',
  '/v3/election/campaign': 'v3electionpb.Election/Campaign',
  '/v3/election/proclaim': 'v3electionpb.Election/Proclaim',
  '/v3/election/leader': 'v3electionpb.Election/Leader',
  '/v3/election/observe': 'v3electionpb.Election/Observe',
  '/v3/election/resign': 'v3electionpb.Election/Resign',
};

/** A JSON request body larger than this is refused before it is parsed. */
export const gatewayBodyBytesDefault = 64 * 1024 * 1024;

export interface JsonGatewayOptions {
  /**
   * The member's own gRPC address as `host:port`, asked for on first use because the client
   * port may only be known once bound. See gatewayTarget().
   */
  target: () => string;
  /** Channel credentials for reaching the target; insecure when absent. */
  credentials?: grpc.ChannelCredentials;
  /**
   * True while etcd refuses gateway requests whose client certificate has a common name (client
   * certificate auth and auth both enabled): the gateway's calls never take a user from it.
   */
  refuseCommonNames?: () => boolean;
  maxBodyBytes?: number;
}

export interface JsonGateway {
  /** Prefix routes for HttpHandlers.routes: '/v3/' and the '/v3beta/' alias etcd 3.4 kept. */
  routes: Record<string, http.RequestListener>;
  /** Closes the gateway's channel to the gRPC server; in-flight streams end. */
  close(): void;
}

/** How to dial a listener bound to `host`: wildcard binds are reached over loopback. */
export function gatewayTarget(host: string, port: number): string {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  if (bare === '' || bare === '0.0.0.0') return `127.0.0.1:${port}`;
  if (bare === '::') return `[::1]:${port}`;
  return bare.includes(':') ? `[${bare}]:${port}` : `${bare}:${port}`;
}

interface GatewayMethod {
  path: string;
  requestType: protobuf.Type;
  responseType: protobuf.Type;
  requestStream: boolean;
  responseStream: boolean;
}

function resolveMethod(method: string): GatewayMethod {
  const slash = method.indexOf('/');
  const service = gatewayProtoRoot().lookupService(method.slice(0, slash));
  const definition = service.methods[method.slice(slash + 1)];
  if (definition === undefined) throw new Error(`gateway method ${method} missing from the protos`);
  definition.resolve();
  return {
    path: `/${method}`,
    requestType: definition.resolvedRequestType!,
    responseType: definition.resolvedResponseType!,
    requestStream: definition.requestStream === true,
    responseStream: definition.responseStream === true,
  };
}

// ------------------------------------------------------------------------------------------------
// HTTP answers in grpc-gateway's shapes.
// ------------------------------------------------------------------------------------------------

/** grpc-gateway's mapping from gRPC status codes to HTTP statuses. */
const httpStatusByCode: Record<number, number> = {
  0: 200,
  1: 408,
  2: 500,
  3: 400,
  4: 504,
  5: 404,
  6: 409,
  7: 403,
  8: 429,
  9: 412,
  10: 409,
  11: 400,
  12: 501,
  13: 500,
  14: 503,
  15: 500,
  16: 401,
};

export function httpStatusFromCode(code: number): number {
  return httpStatusByCode[code] ?? 500;
}

/**
 * The body etcd 3.4's grpc-gateway writes for a failed call: error, message, code (the order of its
 * errorBody fields, which etcd 3.5's gateway changed to error, code, message); empty fields left out.
 */
function errorBody(code: number, message: string): string {
  const parts = [];
  if (message !== '') parts.push(`"error":${goJsonString(message)}`, `"message":${goJsonString(message)}`);
  if (code !== 0) parts.push(`"code":${code}`);
  return `{${parts.join(',')}}`;
}

/** A stream's failure after it has started, as grpc-gateway's StreamError chunk. */
function streamErrorChunk(code: number, message: string): string {
  const status = httpStatusFromCode(code);
  const fields = [`"grpc_code":${code}`, `"http_code":${status}`];
  if (message !== '') fields.push(`"message":${goJsonString(message)}`);
  fields.push(`"http_status":${goJsonString(http.STATUS_CODES[status] ?? '')}`);
  return `{"error":{${fields.join(',')}}}`;
}

function sendError(request: http.IncomingMessage, response: http.ServerResponse, code: number, message: string) {
  if (response.headersSent) return void response.end();
  const body = errorBody(code, message);
  response.setHeader('Content-Type', 'application/json');
  // grpc-gateway forwards gRPC trailers only to clients that said they accept trailers.
  if (/trailers/i.test(String(request.headers.te ?? ''))) {
    response.writeHead(httpStatusFromCode(code), { Trailer: 'Grpc-Trailer-Content-Type' });
    response.addTrailers({ 'Grpc-Trailer-Content-Type': 'application/grpc' });
    response.end(body);
    return;
  }
  response.writeHead(httpStatusFromCode(code), { 'Content-Length': Buffer.byteLength(body) });
  response.end(body);
}

/** Go's http.Error, which grpc-gateway uses for unknown paths and wrong methods. */
function sendText(response: http.ServerResponse, status: number, body = `${http.STATUS_CODES[status] ?? ''}\n`) {
  response.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    'Content-Length': Buffer.byteLength(body),
  });
  response.end(body);
}

function statusOf(error: unknown): { code: number; message: string } {
  if (error instanceof GatewayJsonError) return { code: GrpcCode.invalidArgument, message: error.message };
  const service = error as Partial<grpc.ServiceError>;
  if (typeof service.code === 'number') return { code: service.code, message: service.details ?? '' };
  return { code: GrpcCode.unknown, message: error instanceof Error ? error.message : String(error) };
}

/**
 * grpc-gateway passes Authorization through (etcd reads its token from it) and Grpc-Metadata-*,
 * and marks its calls, so that the gateway's own TLS certificate never names the caller.
 */
function outgoingMetadata(request: http.IncomingMessage): grpc.Metadata {
  const metadata = new (grpcJs().Metadata)();
  metadata.add(gatewayMarkerHeader, request.headers.accept ?? '*/*');
  // The audit log records the call under the HTTP path and the HTTP client's address.
  metadata.add(gatewayAuditHeaders.secret, gatewayAuditSecret);
  metadata.add(gatewayAuditHeaders.path, (request.url ?? '').split('?')[0]!);
  metadata.add(gatewayAuditHeaders.remote, `${request.socket.remoteAddress ?? ''}:${request.socket.remotePort ?? 0}`);
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    const values = Array.isArray(value) ? value : [value];
    const key = name === 'authorization' ? name : name.startsWith('grpc-metadata-') ? name.slice(14) : undefined;
    if (key === undefined || key === '' || key.endsWith('-bin')) continue;
    for (const item of values) metadata.add(key, item);
  }
  return metadata;
}

/** Go's canonical header spelling: each dash-separated word capitalised. */
function canonicalHeader(name: string): string {
  return name
    .toLowerCase()
    .replace(/(^|-)([a-z])/g, (_match, dash: string, letter: string) => dash + letter.toUpperCase());
}

/** Metadata grpc-js reports that is transport detail rather than something the server set. */
const transportMetadata = new Set(['content-type', 'date', 'grpc-accept-encoding', 'grpc-encoding', 'user-agent']);

/** The gRPC server's header metadata, forwarded as grpc-gateway does, with Go's content type. */
function forwardedHeaders(metadata?: grpc.Metadata): Record<string, string> {
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    'Grpc-Metadata-Content-Type': 'application/grpc',
  };
  for (const [key, value] of Object.entries(metadata?.getMap() ?? {})) {
    if (typeof value === 'string' && !transportMetadata.has(key))
      headers[canonicalHeader(`grpc-metadata-${key}`)] = value;
  }
  return headers;
}

// ------------------------------------------------------------------------------------------------
// Calls.
// ------------------------------------------------------------------------------------------------

const identity = (buffer: Buffer) => buffer;

/** Reads the whole body, refusing one over the limit in grpc-go's words. */
function readBody(request: http.IncomingMessage, maxBytes: number): Promise<Buffer> {
  return readBodyBounded(
    request,
    maxBytes,
    (total) => new GatewayJsonError(grpcTexts.messageTooLarge(total, maxBytes)),
  );
}

/** The first JSON object of a body as request bytes; an empty body is an empty request. */
function firstRequest(method: GatewayMethod, body: Buffer): Buffer {
  const prefix = readJsonPrefix(body, 0, true);
  if (prefix.kind === 'incomplete') throw new GatewayJsonError(unexpectedEofText);
  if (prefix.kind === 'end') return Buffer.alloc(0);
  return Buffer.from(encodeJsonRequest(method.requestType, prefix.value));
}

interface CallContext {
  client: () => grpc.Client;
  maxBodyBytes: number;
}

async function serveUnary(
  context: CallContext,
  method: GatewayMethod,
  request: http.IncomingMessage,
  response: http.ServerResponse,
) {
  const body = await readBody(request, context.maxBodyBytes);
  const argument = firstRequest(method, body);
  let headerMetadata: grpc.Metadata | undefined;
  const reply = await new Promise<Buffer>((resolve, reject) => {
    const call = context
      .client()
      .makeUnaryRequest(method.path, identity, identity, argument, outgoingMetadata(request), (error, value) =>
        error ? reject(error) : resolve(value!),
      );
    call.on('metadata', (metadata) => (headerMetadata = metadata));
    response.once('close', () => call.cancel());
  });
  const json = decodeToJson(method.responseType, reply);
  response.writeHead(200, { ...forwardedHeaders(headerMetadata), 'Content-Length': Buffer.byteLength(json) });
  response.end(json);
}

type ResponseStream = grpc.ClientReadableStream<Buffer> | grpc.ClientDuplexStream<Buffer, Buffer>;

/** Writes each response as a `{"result": ...}` line, headers once the server's headers arrive. */
function relayResponses(
  method: GatewayMethod,
  call: ResponseStream,
  request: http.IncomingMessage,
  response: http.ServerResponse,
) {
  let wroteMessage = false;
  const start = (metadata?: grpc.Metadata) => {
    if (!response.headersSent)
      response.writeHead(200, { ...forwardedHeaders(metadata), 'Transfer-Encoding': 'chunked' });
  };
  call.on('metadata', start);
  call.on('data', (message: Buffer) => {
    start();
    response.write(`{"result":${decodeToJson(method.responseType, message)}}\n`);
    wroteMessage = true;
  });
  call.on('error', (error: unknown) => {
    const { code, message } = statusOf(error);
    if (code === GrpcCode.canceled && response.destroyed) return;
    if (!response.headersSent) return sendError(request, response, code, message);
    if (!wroteMessage) response.statusCode = httpStatusFromCode(code);
    response.end(streamErrorChunk(code, message));
  });
  call.on('end', () => {
    start();
    response.end();
  });
  response.once('close', () => call.cancel());
}

async function serveServerStream(
  context: CallContext,
  method: GatewayMethod,
  request: http.IncomingMessage,
  response: http.ServerResponse,
) {
  const argument = firstRequest(method, await readBody(request, context.maxBodyBytes));
  const call = context
    .client()
    .makeServerStreamRequest(method.path, identity, identity, argument, outgoingMetadata(request));
  relayResponses(method, call, request, response);
}

/**
 * Feeds request objects to the stream as they arrive. The first object is decoded before the
 * stream opens so a malformed one is answered like grpc-gateway does (UNKNOWN); later bad
 * objects, like the end of the body, just close the sending side.
 */
function serveBidiStream(
  context: CallContext,
  method: GatewayMethod,
  request: http.IncomingMessage,
  response: http.ServerResponse,
) {
  let pending = Buffer.alloc(0);
  let call: grpc.ClientDuplexStream<Buffer, Buffer> | undefined;
  let sending = true;
  const open = () => {
    call = context.client().makeBidiStreamRequest(method.path, identity, identity, outgoingMetadata(request));
    relayResponses(method, call, request, response);
    return call;
  };
  const pump = (final: boolean) => {
    while (sending) {
      let prefix: JsonPrefix;
      let encoded: Buffer;
      try {
        prefix = readJsonPrefix(pending, 0, final);
        if (prefix.kind === 'incomplete' && final) throw new GatewayJsonError(unexpectedEofText);
        if (prefix.kind !== 'value') break;
        encoded = Buffer.from(encodeJsonRequest(method.requestType, prefix.value));
      } catch (error) {
        sending = false;
        if (call === undefined) return void sendError(request, response, GrpcCode.unknown, statusOf(error).message);
        call.end();
        return;
      }
      pending = pending.subarray(prefix.end);
      (call ?? open()).write(encoded);
    }
  };
  request.on('data', (chunk: Buffer) => {
    if (!sending) return;
    pending = Buffer.concat([pending, chunk]);
    if (pending.length > context.maxBodyBytes) {
      // One request object larger than any the server would accept: stop sending, as on a bad one.
      sending = false;
      if (call === undefined) sendError(request, response, GrpcCode.unknown, 'request object too large');
      else call.end();
      return;
    }
    pump(false);
  });
  request.on('end', () => {
    if (!sending) return;
    pump(true);
    if (!sending) return;
    sending = false;
    (call ?? open()).end();
  });
}

function serve(
  context: CallContext,
  method: GatewayMethod,
  request: http.IncomingMessage,
  response: http.ServerResponse,
) {
  const failed = (error: unknown) => {
    const { code, message } = statusOf(error);
    if (!response.destroyed) sendError(request, response, code, message);
  };
  try {
    if (method.requestStream) return serveBidiStream(context, method, request, response);
    const served = method.responseStream
      ? serveServerStream(context, method, request, response)
      : serveUnary(context, method, request, response);
    served.catch(failed);
  } catch (error) {
    failed(error);
  }
}

/** Builds the gateway's routes; nothing is dialled until the first request. */
export function createJsonGateway(options: JsonGatewayOptions): JsonGateway {
  // Resolved on the gateway's first request: reading the protos with protobufjs is a tenth of a member's start.
  let methods: Map<string, GatewayMethod> | undefined;
  const methodAt = (path: string) =>
    (methods ??= new Map(Object.entries(gatewayPaths).map(([at, method]) => [at, resolveMethod(method)]))).get(path);
  let client: grpc.Client | undefined;
  const context: CallContext = {
    maxBodyBytes: options.maxBodyBytes ?? gatewayBodyBytesDefault,
    client: () =>
      (client ??= new (grpcJs().Client)(
        options.target(),
        options.credentials ?? grpcJs().credentials.createInsecure(),
        {
          'grpc.max_receive_message_length': -1,
          'grpc.max_send_message_length': -1,
        },
      )),
  };
  const listener: http.RequestListener = (request, response) => {
    if (options.refuseCommonNames?.() === true && verifiedCommonName(request.socket) !== undefined)
      return sendText(response, 400, `${gatewayTexts.commonNameIgnored}\n`);
    // etcd answers preflight requests itself, before the gateway sees them.
    if (request.method === 'OPTIONS') return void response.writeHead(200, { 'Content-Length': 0 }).end();
    const path = new URL(request.url ?? '/', 'http://localhost').pathname.replace(/^\/v3beta\//, '/v3/');
    const method = methodAt(path);
    if (method === undefined) return sendText(response, 404);
    if (request.method !== 'POST') return sendText(response, 405);
    serve(context, method, request, response);
  };
  return {
    routes: { '/v3/': listener, '/v3beta/': listener },
    close: () => client?.close(),
  };
}
