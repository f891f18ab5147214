/**
 * How etcd's lock and election servers pass errors on (their texts are in src/api/errors.ts):
 * etcd serves these recipes through a client of itself, so every failure, its own or the KV
 * layer's, reaches clients with code UNKNOWN and the message text unchanged.
 */
import { EtcdError, GrpcCode } from '../api/errors.js';

/** An error as etcd's recipe servers pass it on: EtcdErrors keep their text under code UNKNOWN. */
export function asRecipeError(error: unknown): unknown {
  if (!(error instanceof EtcdError) || error.code === GrpcCode.unknown || error.code === GrpcCode.canceled)
    return error;
  return new EtcdError(GrpcCode.unknown, error.message);
}
