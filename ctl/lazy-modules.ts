/**
 * The gRPC and protobuf libraries, loaded on first use: a one-shot get, put or del needs none of
 * them (ctl/grpc-unary.ts and src/api's codecs carry it), and loading them costs more than the
 * whole call. They are CommonJS, so they load synchronously where a command first needs them.
 * node:dns/promises too: only host names and --discovery-srv need it, and it costs a millisecond
 * and a half of a one-shot command's start.
 */
import { createRequire } from 'node:module';
import type * as GrpcJs from '@grpc/grpc-js';
import type * as ProtoLoader from '@grpc/proto-loader';
import type ProtobufJs from 'protobufjs';
import type * as DnsPromises from 'node:dns/promises';

let require: NodeJS.Require | undefined;

/** Made on first use too: a one-shot command never needs it. */
function requireHere(): NodeJS.Require {
  require ??= createRequire(import.meta.url);
  return require;
}

let grpc: typeof GrpcJs | undefined;
let protoLoader: typeof ProtoLoader | undefined;
let protobuf: typeof ProtobufJs | undefined;
let dns: typeof DnsPromises | undefined;

/** @grpc/grpc-js, for streams and the calls without a hand-written codec. */
export function grpcJs(): typeof GrpcJs {
  grpc ??= requireHere()('@grpc/grpc-js') as typeof GrpcJs;
  return grpc;
}

/** @grpc/proto-loader, for the service definitions grpc-js calls with. */
export function protoLoaderJs(): typeof ProtoLoader {
  protoLoader ??= requireHere()('@grpc/proto-loader') as typeof ProtoLoader;
  return protoLoader;
}

/** protobufjs, for the printers' reflection (-w json, fields of other messages, -w protobuf). */
export function protobufJs(): typeof ProtobufJs {
  protobuf ??= requireHere()('protobufjs') as typeof ProtobufJs;
  return protobuf;
}

/** node:dns/promises, for host name look-ups and DNS SRV discovery. */
export function dnsPromises(): typeof DnsPromises {
  dns ??= requireHere()('node:dns/promises') as typeof DnsPromises;
  return dns;
}
