/**
 * grpc-js, loaded on first use. A member serves gRPC with its own HTTP/2 server and needs grpc-js only
 * for a call's Metadata object and for the JSON gateway's and a TLS gateway's client, so a start does
 * not pay for loading the package (about 0.1 s of the member thread's CPU).
 */
import { createRequire } from 'node:module';
import type * as GrpcJs from '@grpc/grpc-js';

let loaded: typeof GrpcJs | undefined;

/** The grpc-js package, required synchronously the first time it is asked for. */
export function grpcJs(): typeof GrpcJs {
  return (loaded ??= createRequire(import.meta.url)('@grpc/grpc-js') as typeof GrpcJs);
}
