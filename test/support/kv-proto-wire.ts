/**
 * The proto-loader mapping of etcd's KV messages to the domain types of src/api/types.ts and
 * back. Production decodes and encodes these messages directly (src/api/request-decoder.ts,
 * response-encoder.ts); the tests keep this generic path as the reference those codecs must
 * agree with, and as a client-side mapping.
 */
import { errors } from '../../src/api/errors.js';
import {
  headerToWire,
  keyValueToWire,
  type WireHeader,
  type WireKeyValue,
  type WireLong,
} from '../../src/api/proto-wire.js';
import { CompareTarget } from '../../src/api/types.js';
import type {
  Compare,
  DeleteRangeRequest,
  DeleteRangeResult,
  KeyValue,
  PutRequest,
  PutResult,
  RangeRequest,
  RangeResult,
  RequestOp,
  ResponseHeader,
  ResponseOp,
  TxnRequest,
  TxnResult,
} from '../../src/api/types.js';

// ------------------------------------------------------------------------------------------------
// Wire shapes (what proto-loader hands us and accepts)
// ------------------------------------------------------------------------------------------------

export interface WireRangeRequest {
  key: Uint8Array;
  rangeEnd: Uint8Array;
  limit: WireLong;
  revision: WireLong;
  sortOrder: number;
  sortTarget: number;
  serializable: boolean;
  keysOnly: boolean;
  countOnly: boolean;
  minModRevision: WireLong;
  maxModRevision: WireLong;
  minCreateRevision: WireLong;
  maxCreateRevision: WireLong;
}

export interface WirePutRequest {
  key: Uint8Array;
  value: Uint8Array;
  lease: WireLong;
  prevKv: boolean;
  ignoreValue: boolean;
  ignoreLease: boolean;
}

export interface WireDeleteRangeRequest {
  key: Uint8Array;
  rangeEnd: Uint8Array;
  prevKv: boolean;
}

export interface WireCompare {
  result: number;
  target: number;
  key: Uint8Array;
  targetUnion?: 'version' | 'createRevision' | 'modRevision' | 'value' | 'lease';
  version?: WireLong;
  createRevision?: WireLong;
  modRevision?: WireLong;
  value?: Uint8Array;
  lease?: WireLong;
  rangeEnd: Uint8Array;
}

export interface WireRequestOp {
  request?: 'requestRange' | 'requestPut' | 'requestDeleteRange' | 'requestTxn';
  requestRange?: WireRangeRequest;
  requestPut?: WirePutRequest;
  requestDeleteRange?: WireDeleteRangeRequest;
  requestTxn?: WireTxnRequest;
}

export interface WireTxnRequest {
  compare: WireCompare[];
  success: WireRequestOp[];
  failure: WireRequestOp[];
}

export interface WireRangeResponse {
  header: WireHeader;
  kvs: WireKeyValue[];
  more: boolean;
  count: WireLong;
}

export interface WirePutResponse {
  header: WireHeader;
  prevKv?: WireKeyValue;
}

export interface WireDeleteRangeResponse {
  header: WireHeader;
  deleted: WireLong;
  prevKvs: WireKeyValue[];
}

export type WireResponseOp =
  | { responseRange: WireRangeResponse }
  | { responsePut: WirePutResponse }
  | { responseDeleteRange: WireDeleteRangeResponse }
  | { responseTxn: WireTxnResponse };

export interface WireTxnResponse {
  header: WireHeader;
  succeeded: boolean;
  responses: WireResponseOp[];
}

// ------------------------------------------------------------------------------------------------
// Requests: wire -> domain
// ------------------------------------------------------------------------------------------------

/** int64 revision or count to number; a value beyond 2^53 only loses precision, never throws. */
function toNumber(value: WireLong | undefined): number {
  return value === undefined || value === '' ? 0 : Number(value);
}

function toBigInt(value: WireLong | undefined): bigint {
  return value === undefined || value === '' ? 0n : BigInt(value);
}

function toBytes(value: Uint8Array | undefined | null): Uint8Array {
  return value ?? new Uint8Array(0);
}

export function rangeRequestFromWire(wire: WireRangeRequest): RangeRequest {
  return {
    key: toBytes(wire.key),
    rangeEnd: toBytes(wire.rangeEnd),
    limit: toNumber(wire.limit),
    revision: toNumber(wire.revision),
    sortOrder: wire.sortOrder,
    sortTarget: wire.sortTarget,
    serializable: wire.serializable,
    keysOnly: wire.keysOnly,
    countOnly: wire.countOnly,
    minModRevision: toNumber(wire.minModRevision),
    maxModRevision: toNumber(wire.maxModRevision),
    minCreateRevision: toNumber(wire.minCreateRevision),
    maxCreateRevision: toNumber(wire.maxCreateRevision),
  };
}

export function putRequestFromWire(wire: WirePutRequest): PutRequest {
  return {
    key: toBytes(wire.key),
    value: toBytes(wire.value),
    lease: toBigInt(wire.lease),
    prevKv: wire.prevKv,
    ignoreValue: wire.ignoreValue,
    ignoreLease: wire.ignoreLease,
  };
}

export function deleteRangeRequestFromWire(wire: WireDeleteRangeRequest): DeleteRangeRequest {
  return { key: toBytes(wire.key), rangeEnd: toBytes(wire.rangeEnd), prevKv: wire.prevKv };
}

/** The domain Compare holds every operand; only the one the wire's oneof carries is non-zero. */
export function compareFromWire(wire: WireCompare): Compare {
  return {
    result: wire.result,
    target: wire.target,
    key: toBytes(wire.key),
    rangeEnd: toBytes(wire.rangeEnd),
    version: toNumber(wire.version),
    createRevision: toNumber(wire.createRevision),
    modRevision: toNumber(wire.modRevision),
    value: toBytes(wire.value),
    lease: toBigInt(wire.lease),
  };
}

/**
 * An op with no request set has no domain form; etcd rejects it with "key not found" during
 * validation, so decoding does the same.
 */
export function requestOpFromWire(wire: WireRequestOp): RequestOp {
  switch (wire.request) {
    case 'requestRange':
      return { type: 'range', range: rangeRequestFromWire(wire.requestRange!) };
    case 'requestPut':
      return { type: 'put', put: putRequestFromWire(wire.requestPut!) };
    case 'requestDeleteRange':
      return { type: 'deleteRange', deleteRange: deleteRangeRequestFromWire(wire.requestDeleteRange!) };
    case 'requestTxn':
      return { type: 'txn', txn: txnRequestFromWire(wire.requestTxn!) };
    default:
      throw errors.keyNotFound();
  }
}

export function txnRequestFromWire(wire: WireTxnRequest): TxnRequest {
  return {
    compare: wire.compare.map(compareFromWire),
    success: wire.success.map(requestOpFromWire),
    failure: wire.failure.map(requestOpFromWire),
  };
}

// ------------------------------------------------------------------------------------------------
// Requests: domain -> wire
// ------------------------------------------------------------------------------------------------

export function rangeRequestToWire(request: RangeRequest): WireRangeRequest {
  return {
    ...request,
    limit: String(request.limit),
    revision: String(request.revision),
    minModRevision: String(request.minModRevision),
    maxModRevision: String(request.maxModRevision),
    minCreateRevision: String(request.minCreateRevision),
    maxCreateRevision: String(request.maxCreateRevision),
  };
}

export function putRequestToWire(request: PutRequest): WirePutRequest {
  return { ...request, lease: request.lease.toString() };
}

export function compareToWire(compare: Compare): WireCompare {
  const base = { result: compare.result, target: compare.target, key: compare.key, rangeEnd: compare.rangeEnd };
  switch (compare.target) {
    case CompareTarget.version:
      return { ...base, targetUnion: 'version', version: String(compare.version) };
    case CompareTarget.create:
      return { ...base, targetUnion: 'createRevision', createRevision: String(compare.createRevision) };
    case CompareTarget.mod:
      return { ...base, targetUnion: 'modRevision', modRevision: String(compare.modRevision) };
    case CompareTarget.value:
      return { ...base, targetUnion: 'value', value: compare.value };
    case CompareTarget.lease:
      return { ...base, targetUnion: 'lease', lease: compare.lease.toString() };
  }
}

export function requestOpToWire(op: RequestOp): WireRequestOp {
  switch (op.type) {
    case 'range':
      return { request: 'requestRange', requestRange: rangeRequestToWire(op.range) };
    case 'put':
      return { request: 'requestPut', requestPut: putRequestToWire(op.put) };
    case 'deleteRange':
      return { request: 'requestDeleteRange', requestDeleteRange: op.deleteRange };
    case 'txn':
      return { request: 'requestTxn', requestTxn: txnRequestToWire(op.txn) };
  }
}

export function txnRequestToWire(request: TxnRequest): WireTxnRequest {
  return {
    compare: request.compare.map(compareToWire),
    success: request.success.map(requestOpToWire),
    failure: request.failure.map(requestOpToWire),
  };
}

// ------------------------------------------------------------------------------------------------
// Responses: domain -> wire
// ------------------------------------------------------------------------------------------------

/** etcd fills only the revision in the headers of ops inside a txn. */
function revisionOnlyHeader(revision: number): WireHeader {
  return headerToWire({ clusterId: 0n, memberId: 0n, revision, raftTerm: 0 });
}

export function rangeResponseToWire(header: WireHeader, result: RangeResult): WireRangeResponse {
  return { header, kvs: result.kvs.map(keyValueToWire), more: result.more, count: String(result.count) };
}

export function putResponseToWire(header: WireHeader, result: PutResult): WirePutResponse {
  const wire: WirePutResponse = { header };
  if (result.prevKv !== undefined) wire.prevKv = keyValueToWire(result.prevKv);
  return wire;
}

export function deleteRangeResponseToWire(header: WireHeader, result: DeleteRangeResult): WireDeleteRangeResponse {
  return { header, deleted: String(result.deleted), prevKvs: result.prevKvs.map(keyValueToWire) };
}

/**
 * Nested op headers carry only a revision (the op's own, or the txn's); a nested txn's header
 * stays all zero, exactly as etcd 3.4 answers.
 */
function responseOpToWire(op: ResponseOp, txnRevision: number): WireResponseOp {
  switch (op.type) {
    case 'range':
      return { responseRange: rangeResponseToWire(revisionOnlyHeader(op.range.revision ?? txnRevision), op.range) };
    case 'put':
      return { responsePut: putResponseToWire(revisionOnlyHeader(op.put.revision ?? txnRevision), op.put) };
    case 'deleteRange': {
      const header = revisionOnlyHeader(op.deleteRange.revision ?? txnRevision);
      return { responseDeleteRange: deleteRangeResponseToWire(header, op.deleteRange) };
    }
    case 'txn':
      return { responseTxn: txnResultToWire(revisionOnlyHeader(0), op.txn, txnRevision) };
  }
}

function txnResultToWire(header: WireHeader, result: TxnResult, txnRevision: number): WireTxnResponse {
  return {
    header,
    succeeded: result.succeeded,
    responses: result.responses.map((op) => responseOpToWire(op, txnRevision)),
  };
}

export function txnResponseToWire(header: ResponseHeader, result: TxnResult): WireTxnResponse {
  return txnResultToWire(headerToWire(header), result, header.revision);
}

// ------------------------------------------------------------------------------------------------
// Responses: wire -> domain
// ------------------------------------------------------------------------------------------------

export function headerFromWire(wire: WireHeader): ResponseHeader {
  return {
    clusterId: toBigInt(wire.clusterId),
    memberId: toBigInt(wire.memberId),
    revision: toNumber(wire.revision),
    raftTerm: toNumber(wire.raftTerm),
  };
}

export function keyValueFromWire(wire: WireKeyValue): KeyValue {
  return {
    key: toBytes(wire.key),
    createRevision: toNumber(wire.createRevision),
    modRevision: toNumber(wire.modRevision),
    version: toNumber(wire.version),
    value: toBytes(wire.value),
    lease: toBigInt(wire.lease),
  };
}
