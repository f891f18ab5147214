/**
 * The audit log's records, shaped from what a call asked and how it ended (pure: the caller
 * brings the time). One record per authentication attempt, per call a permission check refused,
 * and per call that asks for a change (writes, leases, auth management, membership, alarms,
 * defragmentation, leader moves), whatever its outcome. Allowed reads are not recorded: they are
 * most of the traffic, and a refused one is. A record never holds a password, a token or a value;
 * keys are text, or "base64:" and their base64 when they are not printable UTF-8
 * (schemas/audit-event.schema.json says the same).
 */
import { errors, GrpcCode } from '../api/errors.js';
import { EncodedResponse } from '../api/response-encoder.js';
import { fieldKey, protoReaderOf, wireBytes, wireVarint } from '../lib/protobuf.js';

export type AuditOutcome = 'ok' | 'denied' | 'error';

/** One line of the audit log, in the order the fields are written. */
/** The method of a record for a TLS connection refused before any call was made. */
export const tlsHandshakeMethod = '/tls/handshake';

export interface AuditRecord {
  /** RFC 3339 with milliseconds, UTC. */
  time: string;
  member: string;
  remote: string;
  /** The user (from a token or Authenticate's name) or certificate common name; absent when anonymous. */
  identity?: string;
  /** Where the identity came from. */
  identity_source?: 'token' | 'certificate' | 'password';
  /** `/package.Service/Method`, the HTTP path a JSON gateway call came in on, or tlsHandshakeMethod. */
  method: string;
  outcome: AuditOutcome;
  /** The gRPC status code number. */
  code: number;
  key?: string;
  range_end?: string;
  /** The user or role a management call names. */
  target?: string;
  /** A lease a call names, in decimal. */
  lease?: string;
  /** The store's revision after a successful write. */
  revision?: number;
}

/** The part of a record the request itself determines. */
export interface AuditSubject {
  key?: string;
  range_end?: string;
  target?: string;
  lease?: string;
}

/** Marks a key written as base64 (a key that is not printable UTF-8, or that starts with the marker). */
export const binaryKeyMarker = 'base64:';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A key as text: itself when it is printable UTF-8, otherwise the marker and its base64. */
export function keyText(key: Uint8Array): string {
  let text: string | undefined;
  try {
    text = utf8.decode(key);
  } catch {
    text = undefined;
  }
  // Control characters (C0, DEL, C1) would make the log hard to read and to grep.
  // eslint-disable-next-line no-control-regex
  if (text !== undefined && !/[\u0000-\u001f\u007f-\u009f]/.test(text) && !text.startsWith(binaryKeyMarker))
    return text;
  return binaryKeyMarker + Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64');
}

/** The methods that ask for a change: every call to them is recorded, allowed or not. */
export const mutatingMethods: ReadonlySet<string> = new Set([
  '/etcdserverpb.KV/Put',
  '/etcdserverpb.KV/DeleteRange',
  '/etcdserverpb.KV/Txn',
  '/etcdserverpb.KV/Compact',
  '/etcdserverpb.Lease/LeaseGrant',
  '/etcdserverpb.Lease/LeaseRevoke',
  '/etcdserverpb.Auth/AuthEnable',
  '/etcdserverpb.Auth/AuthDisable',
  '/etcdserverpb.Auth/UserAdd',
  '/etcdserverpb.Auth/UserDelete',
  '/etcdserverpb.Auth/UserChangePassword',
  '/etcdserverpb.Auth/UserGrantRole',
  '/etcdserverpb.Auth/UserRevokeRole',
  '/etcdserverpb.Auth/RoleAdd',
  '/etcdserverpb.Auth/RoleDelete',
  '/etcdserverpb.Auth/RoleGrantPermission',
  '/etcdserverpb.Auth/RoleRevokePermission',
  '/etcdserverpb.Cluster/MemberAdd',
  '/etcdserverpb.Cluster/MemberRemove',
  '/etcdserverpb.Cluster/MemberUpdate',
  '/etcdserverpb.Cluster/MemberPromote',
  '/etcdserverpb.Maintenance/Alarm',
  '/etcdserverpb.Maintenance/Defragment',
  '/etcdserverpb.Maintenance/MoveLeader',
]);

export const authenticateMethod = '/etcdserverpb.Auth/Authenticate';

/** Whether a call ending with `outcome` is recorded. */
export function isAudited(method: string, outcome: AuditOutcome): boolean {
  return outcome === 'denied' || method === authenticateMethod || mutatingMethods.has(method);
}

const refusalTexts: ReadonlySet<string> = new Set([
  errors.authFailed().message,
  errors.userEmpty().message,
  errors.noPasswordUser().message,
]);

/** `denied` for the refusals of authentication and authorisation, `error` for any other failure. */
export function outcomeOf(code: number, message: string): AuditOutcome {
  if (code === GrpcCode.ok) return 'ok';
  if (code === GrpcCode.permissionDenied || code === GrpcCode.unauthenticated) return 'denied';
  return refusalTexts.has(message) ? 'denied' : 'error';
}

/** The first byte string among a request's fields, if any. */
function bytesOf(value: unknown): Uint8Array | undefined {
  return value instanceof Uint8Array && value.length > 0 ? value : undefined;
}

function textOf(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function withKeys(subject: AuditSubject, key: unknown, rangeEnd: unknown): AuditSubject {
  const keyBytes = bytesOf(key);
  const rangeEndBytes = bytesOf(rangeEnd);
  if (keyBytes !== undefined) subject.key = keyText(keyBytes);
  if (rangeEndBytes !== undefined) subject.range_end = keyText(rangeEndBytes);
  return subject;
}

/**
 * What a request names: its key and range end (for a txn, those of its first compare or op), the
 * user or role of a management call, or its lease. Requests are the decoded objects the router
 * hands to handlers; fields are read defensively because their shapes differ per method.
 */
export function subjectOf(method: string, request: Record<string, unknown>): AuditSubject {
  const subject: AuditSubject = {};
  switch (method) {
    case '/etcdserverpb.KV/Range':
    case '/etcdserverpb.KV/Put':
    case '/etcdserverpb.KV/DeleteRange':
    case '/etcdserverpb.Auth/RoleRevokePermission':
      withKeys(subject, request.key, request.rangeEnd);
      break;
    case '/etcdserverpb.KV/Txn':
      txnSubject(subject, request);
      break;
    case '/etcdserverpb.Auth/RoleGrantPermission': {
      const perm = (request.perm ?? {}) as Record<string, unknown>;
      withKeys(subject, perm.key, perm.rangeEnd);
      break;
    }
    case '/etcdserverpb.Lease/LeaseGrant':
    case '/etcdserverpb.Lease/LeaseRevoke':
      if (request.ID !== undefined && String(request.ID) !== '0') subject.lease = String(request.ID);
      break;
  }
  const target = textOf(request.name) ?? textOf(request.user) ?? textOf(request.role);
  if (method.startsWith('/etcdserverpb.Auth/') && method !== authenticateMethod && target !== undefined)
    subject.target = target;
  return subject;
}

/** A txn names the key of its first compare, else of its first success or failure op. */
function txnSubject(subject: AuditSubject, request: Record<string, unknown>): void {
  const compares = (request.compare ?? []) as Record<string, unknown>[];
  if (compares.length > 0) {
    withKeys(subject, compares[0]!.key, compares[0]!.rangeEnd);
    return;
  }
  const ops = [...((request.success ?? []) as Record<string, unknown>[]), ...((request.failure ?? []) as [])];
  const first = ops[0] as Record<string, Record<string, unknown> | string> | undefined;
  if (first === undefined) return;
  const body = first[first.type as string];
  if (typeof body === 'object') withKeys(subject, body.key, body.rangeEnd);
}

const headerField = fieldKey(1, wireBytes);
const revisionField = fieldKey(3, wireVarint);

/**
 * The revision in a response's header: read from the encoded bytes of a KV answer (its header is
 * field 1, the revision field 3 within), or from the wire object of any other.
 */
export function revisionOf(response: unknown): number | undefined {
  if (response instanceof EncodedResponse) {
    const reader = protoReaderOf(response.bytes);
    while (!reader.done) {
      const key = reader.key();
      if (key !== headerField) {
        reader.skip(key);
        continue;
      }
      const header = reader.message();
      while (!header.done) {
        const inner = header.key();
        if (inner === revisionField) return header.int64();
        header.skip(inner);
      }
      return undefined;
    }
    return undefined;
  }
  const revision = (response as { header?: { revision?: unknown } } | undefined)?.header?.revision;
  const value = Number(revision);
  return revision === undefined || !Number.isSafeInteger(value) || value <= 0 ? undefined : value;
}

/** The record as one JSON line (with its newline). */
export function auditLine(record: AuditRecord): string {
  return `${JSON.stringify(record)}\n`;
}

/** RFC 3339 time of a wall-clock reading in milliseconds. */
export function auditTime(epochMs: number): string {
  return new Date(epochMs).toISOString();
}
