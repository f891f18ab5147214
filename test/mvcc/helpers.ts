/** Request builders and a store harness for the mvcc tests. */

import {
  type Compare,
  CompareResult,
  CompareTarget,
  type DeleteRangeRequest,
  type KeyValue,
  type ProposalResult,
  type PutRequest,
  type RangeRequest,
  rangeRequestWith,
  type RequestOp,
  type TxnRequest,
  type TxnResult,
} from '../../src/api/types.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../../src/mvcc/backend.js';
import { MemoryBackend } from '../../src/mvcc/backend.js';
import { type KvStoreOptions, KvStore } from '../../src/mvcc/kv-store.js';

const tempDbDirs: string[] = [];

/** A fresh LMDB path in its own temp dir; removeTempDbs (run it in after()) deletes them all. */
export function tempDbPath(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDbDirs.push(dir);
  return join(dir, 'db');
}

export function removeTempDbs(): void {
  for (const dir of tempDbDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
export const text = (data: Uint8Array): string => Buffer.from(data).toString('latin1');

export function rangeReq(key: string, rangeEnd = '', extra: Partial<RangeRequest> = {}): RangeRequest {
  return rangeRequestWith({ key: bytes(key), rangeEnd: bytes(rangeEnd), ...extra });
}

export function putReq(key: string, value: string, extra: Partial<PutRequest> = {}): PutRequest {
  return {
    key: bytes(key),
    value: bytes(value),
    lease: 0n,
    prevKv: false,
    ignoreValue: false,
    ignoreLease: false,
    ...extra,
  };
}

export function deleteReq(key: string, rangeEnd = '', prevKv = false): DeleteRangeRequest {
  return { key: bytes(key), rangeEnd: bytes(rangeEnd), prevKv };
}

export function cmp(
  key: string,
  target: CompareTarget,
  result: CompareResult,
  operand: number | string | bigint,
  rangeEnd = '',
): Compare {
  return {
    key: bytes(key),
    rangeEnd: bytes(rangeEnd),
    target,
    result,
    version: target === CompareTarget.version ? Number(operand) : 0,
    createRevision: target === CompareTarget.create ? Number(operand) : 0,
    modRevision: target === CompareTarget.mod ? Number(operand) : 0,
    value: target === CompareTarget.value ? bytes(String(operand)) : new Uint8Array(0),
    lease: target === CompareTarget.lease ? BigInt(operand) : 0n,
  };
}

export const op = {
  range: (request: RangeRequest): RequestOp => ({ type: 'range', range: request }),
  put: (request: PutRequest): RequestOp => ({ type: 'put', put: request }),
  del: (request: DeleteRangeRequest): RequestOp => ({ type: 'deleteRange', deleteRange: request }),
  txn: (request: TxnRequest): RequestOp => ({ type: 'txn', txn: request }),
};

export function txnReq(compare: Compare[], success: RequestOp[], failure: RequestOp[] = []): TxnRequest {
  return { compare, success, failure };
}

/** A KvStore fed with consecutive Raft indexes, the way a member applies committed entries. */
export class Harness {
  nextIndex: number;
  readonly store: KvStore;

  constructor(
    readonly backend: Backend = new MemoryBackend(),
    options: KvStoreOptions = {},
  ) {
    this.store = KvStore.open(backend, options);
    this.nextIndex = this.store.consistentIndex + 1;
  }

  apply(body: Parameters<KvStore['apply']>[2]): ProposalResult {
    return this.store.apply(this.nextIndex++, 1, body);
  }

  put(key: string, value: string, extra: Partial<PutRequest> = {}): ProposalResult {
    return this.apply({ type: 'put', put: putReq(key, value, extra) });
  }

  del(key: string, rangeEnd = '', prevKv = false): ProposalResult {
    return this.apply({ type: 'deleteRange', deleteRange: deleteReq(key, rangeEnd, prevKv) });
  }

  txn(request: TxnRequest): TxnResult {
    const result = this.apply({ type: 'txn', txn: request });
    if (result.type !== 'txn') throw new Error(`expected a txn result, got ${result.type}`);
    return result.txn;
  }

  compact(revision: number): void {
    this.apply({ type: 'compaction', compaction: { revision, physical: false } });
  }

  /** Keys (and values) of a range, for compact assertions. */
  keys(key: string, rangeEnd = '', extra: Partial<RangeRequest> = {}): string[] {
    return this.store.range(rangeReq(key, rangeEnd, extra)).kvs.map((kv) => text(kv.key));
  }

  get(key: string, revision = 0): KeyValue | undefined {
    return this.store.range(rangeReq(key, '', { revision })).kvs[0];
  }
}

/** A KeyValue reduced to comparable plain data. */
export function plain(kv: KeyValue | undefined): unknown {
  if (kv === undefined) return undefined;
  return {
    key: text(kv.key),
    value: text(kv.value),
    create: kv.createRevision,
    mod: kv.modRevision,
    version: kv.version,
    lease: kv.lease,
  };
}
