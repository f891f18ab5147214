/**
 * The gRPC and protobuf libraries, loaded on first use: a one-shot get, put or del needs none of
 * them (ctl/grpc-unary.ts and src/api's codecs carry it), and loading them costs more than the
 * whole call. They are CommonJS, so they load synchronously where a command first needs them.
 * node:dns/promises too: only host names and --discovery-srv need it, and it costs a millisecond
 * and a half of a one-shot command's start; so do node:dgram (--discovery-srv's error texts) and
 * node:os (a warning about an unreadable extra CA file), which Node does not hold ready in its
 * start-up snapshot and compiles on first load. Node's modules that only some commands use (node:tls,
 * node:child_process) load here as well rather than by import(): the bundle bin/tsetcdctl.cjs runs
 * is compiled from V8's code cache, and Node 20 loses such a script's import() callback
 * ("A dynamic import callback was not specified"), so the bundle build refuses any import() left.
 */
import { createRequire } from 'node:module';
import { trustDeferredExtraCaCerts } from './extra-ca-certs.js';
import type * as GrpcJs from '@grpc/grpc-js';
import type * as ProtoLoader from '@grpc/proto-loader';
import type ProtobufJs from 'protobufjs';
import type * as DnsPromises from 'node:dns/promises';
import type * as ChildProcess from 'node:child_process';
import type * as Dgram from 'node:dgram';
import type * as Os from 'node:os';
import type * as Tls from 'node:tls';

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
let tls: typeof Tls | undefined;
let childProcess: typeof ChildProcess | undefined;
let dgram: typeof Dgram | undefined;
let os: typeof Os | undefined;

/** @grpc/grpc-js, for streams and the calls without a hand-written codec. */
export function grpcJs(): typeof GrpcJs {
  if (grpc === undefined) {
    grpc = requireHere()('@grpc/grpc-js') as typeof GrpcJs;
    // grpc-js makes its TLS contexts with node:tls, which it has just loaded.
    nodeTls();
  }
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

/** node:tls, for https endpoints, trusting NODE_EXTRA_CA_CERTS where Node would (ctl/extra-ca-certs.ts). */
export function nodeTls(): typeof Tls {
  tls ??= trustDeferredExtraCaCerts(requireHere()('node:tls') as typeof Tls);
  return tls;
}

/** node:child_process, for stty around password prompts. */
export function nodeChildProcess(): typeof ChildProcess {
  childProcess ??= requireHere()('node:child_process') as typeof ChildProcess;
  return childProcess;
}

/** node:dgram, for the local end of a UDP socket that --discovery-srv's errors name. */
export function nodeDgram(): typeof Dgram {
  dgram ??= requireHere()('node:dgram') as typeof Dgram;
  return dgram;
}

/** node:os, for its table of errno numbers. */
export function nodeOs(): typeof Os {
  os ??= requireHere()('node:os') as typeof Os;
  return os;
}
