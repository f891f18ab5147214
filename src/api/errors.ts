/**
 * etcd's client-visible errors: gRPC status code and message text, byte for byte, because clients
 * map errors by their text. Every error the API returns is built here, and every text etcd (or
 * the grpc-go under it) answers with is spelled here once.
 */
import { unexpectedEofText } from '../lib/protobuf.js';

/** gRPC status codes (the numbers are fixed by the gRPC protocol). */
export const enum GrpcCode {
  ok = 0,
  canceled = 1,
  unknown = 2,
  invalidArgument = 3,
  deadlineExceeded = 4,
  notFound = 5,
  alreadyExists = 6,
  permissionDenied = 7,
  resourceExhausted = 8,
  failedPrecondition = 9,
  aborted = 10,
  outOfRange = 11,
  unimplemented = 12,
  internal = 13,
  unavailable = 14,
  dataLoss = 15,
  unauthenticated = 16,
}

/** An error with the gRPC status code and message etcd would answer with. */
export class EtcdError extends Error {
  readonly code: GrpcCode;

  constructor(code: GrpcCode, message: string) {
    super(message);
    this.name = 'EtcdError';
    this.code = code;
  }
}

function define(code: GrpcCode, message: string): () => EtcdError {
  return () => new EtcdError(code, message);
}

export const errors = {
  emptyKey: define(GrpcCode.invalidArgument, 'etcdserver: key is not provided'),
  keyNotFound: define(GrpcCode.invalidArgument, 'etcdserver: key not found'),
  valueProvided: define(GrpcCode.invalidArgument, 'etcdserver: value is provided'),
  leaseProvided: define(GrpcCode.invalidArgument, 'etcdserver: lease is provided'),
  tooManyOps: define(GrpcCode.invalidArgument, 'etcdserver: too many operations in txn request'),
  duplicateKey: define(GrpcCode.invalidArgument, 'etcdserver: duplicate key given in txn request'),
  compacted: define(GrpcCode.outOfRange, 'etcdserver: mvcc: required revision has been compacted'),
  futureRev: define(GrpcCode.outOfRange, 'etcdserver: mvcc: required revision is a future revision'),
  noSpace: define(GrpcCode.resourceExhausted, 'etcdserver: mvcc: database space exceeded'),

  leaseNotFound: define(GrpcCode.notFound, 'etcdserver: requested lease not found'),
  leaseExist: define(GrpcCode.failedPrecondition, 'etcdserver: lease already exists'),
  leaseTtlTooLarge: define(GrpcCode.outOfRange, 'etcdserver: too large lease TTL'),
  watchCanceled: define(GrpcCode.canceled, 'etcdserver: watch canceled'),

  memberExist: define(GrpcCode.failedPrecondition, 'etcdserver: member ID already exist'),
  peerUrlExist: define(GrpcCode.failedPrecondition, 'etcdserver: Peer URLs already exists'),
  memberNotEnoughStarted: define(
    GrpcCode.failedPrecondition,
    'etcdserver: re-configuration failed due to not enough started members',
  ),
  memberBadUrls: define(GrpcCode.invalidArgument, 'etcdserver: given member URLs are invalid'),
  memberNotFound: define(GrpcCode.notFound, 'etcdserver: member not found'),
  memberNotLearner: define(GrpcCode.failedPrecondition, 'etcdserver: can only promote a learner member'),
  learnerNotReady: define(
    GrpcCode.failedPrecondition,
    'etcdserver: can only promote a learner member which is in sync with leader',
  ),
  tooManyLearners: define(GrpcCode.failedPrecondition, 'etcdserver: too many learner members in cluster'),

  requestTooLarge: define(GrpcCode.invalidArgument, 'etcdserver: request is too large'),
  tooManyRequests: define(GrpcCode.resourceExhausted, 'etcdserver: too many requests'),

  rootUserNotExist: define(GrpcCode.failedPrecondition, 'etcdserver: root user does not exist'),
  rootRoleNotExist: define(GrpcCode.failedPrecondition, 'etcdserver: root user does not have root role'),
  userAlreadyExist: define(GrpcCode.failedPrecondition, 'etcdserver: user name already exists'),
  userEmpty: define(GrpcCode.invalidArgument, 'etcdserver: user name is empty'),
  userNotFound: define(GrpcCode.failedPrecondition, 'etcdserver: user name not found'),
  roleAlreadyExist: define(GrpcCode.failedPrecondition, 'etcdserver: role name already exists'),
  roleNotFound: define(GrpcCode.failedPrecondition, 'etcdserver: role name not found'),
  roleEmpty: define(GrpcCode.invalidArgument, 'etcdserver: role name is empty'),
  authFailed: define(GrpcCode.invalidArgument, 'etcdserver: authentication failed, invalid user ID or password'),
  permissionDenied: define(GrpcCode.permissionDenied, 'etcdserver: permission denied'),
  roleNotGranted: define(GrpcCode.failedPrecondition, 'etcdserver: role is not granted to the user'),
  permissionNotGranted: define(GrpcCode.failedPrecondition, 'etcdserver: permission is not granted to the role'),
  authNotEnabled: define(GrpcCode.failedPrecondition, 'etcdserver: authentication is not enabled'),
  invalidAuthToken: define(GrpcCode.unauthenticated, 'etcdserver: invalid auth token'),
  invalidAuthMgmt: define(GrpcCode.invalidArgument, 'etcdserver: invalid auth management'),
  authOldRevision: define(GrpcCode.invalidArgument, 'etcdserver: revision of auth store is old'),
  /** auth.ErrNoPasswordUser, which etcd has no gRPC mapping for: clients see code Unknown and this text. */
  noPasswordUser: define(GrpcCode.unknown, 'auth: authentication failed, password was given for no password user'),

  noLeader: define(GrpcCode.unavailable, 'etcdserver: no leader'),
  notLeader: define(GrpcCode.failedPrecondition, 'etcdserver: not leader'),
  leaderChanged: define(GrpcCode.unavailable, 'etcdserver: leader changed'),
  notCapable: define(GrpcCode.unavailable, 'etcdserver: not capable'),
  stopped: define(GrpcCode.unavailable, 'etcdserver: server stopped'),
  timeout: define(GrpcCode.unavailable, 'etcdserver: request timed out'),
  timeoutDueToLeaderFail: define(
    GrpcCode.unavailable,
    'etcdserver: request timed out, possibly due to previous leader failure',
  ),
  timeoutDueToConnectionLost: define(
    GrpcCode.unavailable,
    'etcdserver: request timed out, possibly due to connection lost',
  ),
  timeoutWaitAppliedIndex: define(
    GrpcCode.unavailable,
    'etcdserver: request timed out, waiting for the applied index took too long',
  ),
  unhealthy: define(GrpcCode.unavailable, 'etcdserver: unhealthy cluster'),
  corrupt: define(GrpcCode.dataLoss, 'etcdserver: corrupt cluster'),
  notSupportedForLearner: define(GrpcCode.unavailable, 'etcdserver: rpc not supported for learner'),
  badLeaderTransferee: define(GrpcCode.failedPrecondition, 'etcdserver: bad leader transferee'),
  /** etcd's ErrTimeoutLeaderTransfer; etcd has no gRPC mapping for it, so clients see code Unknown. */
  timeoutLeaderTransfer: define(GrpcCode.unknown, 'etcdserver: request timed out, leader transfer took too long'),

  /**
   * Go's context.DeadlineExceeded: a proposal Raft never took within etcd's request timeout.
   * etcd hands it to gRPC unmapped, so clients see code Unknown and this text.
   */
  deadlineExceeded: define(GrpcCode.unknown, 'context deadline exceeded'),
  /** raft.ErrProposalDropped (the leader is handing over leadership); unmapped in etcd, so code Unknown. */
  proposalDropped: define(GrpcCode.unknown, 'raft proposal dropped'),

  unimplemented: (method: string) => new EtcdError(GrpcCode.unimplemented, `unknown method ${method}`),
} as const;

/**
 * etcd's words for lock and election failures. etcd serves these recipes through a client of
 * itself, so every failure reaches clients with code UNKNOWN and the message text unchanged.
 */
export const recipeErrors = {
  /** concurrency.ErrElectionNotLeader: the leader key is gone or was re-created. */
  notLeader: define(GrpcCode.unknown, 'election: not leader'),
  /** concurrency.ErrElectionNoLeader: nobody campaigns under the name. */
  noLeader: define(GrpcCode.unknown, 'election: no leader'),
  /** v3election.ErrMissingLeaderKey: Proclaim or Resign without a leader. */
  missingLeaderKey: define(GrpcCode.unknown, '"leader" field must be provided'),
  /** Go's context.Canceled, for a wait its caller gave up on. */
  canceled: define(GrpcCode.canceled, 'context canceled'),
} as const;

/** etcd's words for watch failures, sent to clients as a create response's cancel_reason. */
export const watchCancelReasons = {
  /** mvcc.ErrEmptyWatcherRange: a range end at or before the key. */
  emptyRange: 'mvcc: watcher range is empty',
  /** mvcc.ErrWatcherDuplicateID: a client-chosen watch id already in use on the stream. */
  duplicateId: 'mvcc: duplicate watch ID provided on the WatchStream',
} as const;

/** grpc-go's names of the status codes, indexed by code: its errors print them and go-grpc-prometheus labels with them. */
export const grpcCodeNames: readonly string[] = [
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

/**
 * The cancel reason of a watch refused by auth: etcd writes the gRPC error's full text there. Any
 * refusal other than a bad token, a stale revision or a missing user reads as permission denied.
 */
export function watchRefusalReason(error: EtcdError): string {
  const known = [errors.invalidAuthToken(), errors.authOldRevision(), errors.userEmpty()];
  const refusal = known.find((candidate) => candidate.message === error.message) ?? errors.permissionDenied();
  return `rpc error: code = ${grpcCodeNames[refusal.code] ?? 'Unknown'} desc = ${refusal.message}`;
}

/**
 * etcd's Maintenance server refuses an unauthorised HashKV, Hash, Snapshot or Defragment with the
 * auth package's own error, which has no gRPC mapping: clients see code Unknown and "auth: ...".
 */
export function maintenanceRefusal(error: EtcdError): EtcdError {
  const authTexts: ReadonlyMap<string, string> = new Map([
    [errors.userEmpty().message, 'auth: user name is empty'],
    [errors.invalidAuthToken().message, 'auth: invalid auth token'],
    [errors.authOldRevision().message, 'auth: revision in header is old'],
    [errors.userNotFound().message, 'auth: user not found'],
  ]);
  return new EtcdError(GrpcCode.unknown, authTexts.get(error.message) ?? 'auth: permission denied');
}

/** What etcd's HTTP side answers the JSON gateway's callers with, outside gRPC. */
export const gatewayTexts = {
  /** A request with a named client certificate while client certificate auth and auth are on (400). */
  commonNameIgnored: 'CommonName of client sending a request against gateway will be ignored and not used as expected',
} as const;

/** grpc-go's texts for a request it cannot take, which etcd's clients see unchanged. */
export const grpcTexts = {
  messageTooLarge: (bytes: number, bytesMax: number) =>
    `grpc: received message larger than max (${bytes} vs. ${bytesMax})`,
  unmarshalling: (reason: string) => `grpc: error unmarshalling request: ${reason}`,
  /** A request cut short, as grpc-go reports it. */
  unmarshallingEof: `grpc: error unmarshalling request: ${unexpectedEofText}`,
} as const;

/** etcdctl's words for DNS SRV discovery (--discovery-srv): its srv package over Go's resolver. */
export const discoveryTexts = {
  /** Both the https and the http SRV look-ups failed. */
  lookupErrors: (httpsError: string, httpError: string) => `dns lookup errors: ${httpsError} and ${httpError}`,
  /** Go's DNSError text: the name asked, the server that answered, and why. */
  lookup: (name: string, server: string, reason: string) => `lookup ${name} on ${server}: ${reason}`,
  /** No such name, or no records of the type asked. */
  noSuchHost: 'no such host',
  /** The server answered with a failure code (SERVFAIL, REFUSED, ...). */
  serverMisbehaving: 'server misbehaving',
  /** No answer in time: Go names its UDP socket's two ends (`local` host:port, the `server`). */
  timeout: (local: string, server: string) => `read udp ${local}->${server}: i/o timeout`,
  /** The server's port refused the query (ICMP port unreachable). */
  refused: (local: string, server: string) => `read udp ${local}->${server}: read: connection refused`,
  /** An http:// endpoint found without --insecure-discovery, on stderr; `quoted` is Go-quoted. */
  ignoringInsecure: (quoted: string) => `ignoring discovered insecure endpoint ${quoted}`,
} as const;
