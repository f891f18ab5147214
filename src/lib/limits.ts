/**
 * Every bound and default etcd defines, in one place. Names end in Max for limits; units come last.
 */

/** etcd's --max-request-bytes default: 1.5 MiB. */
export const requestBytesDefault = 1.5 * 1024 * 1024;
/** gRPC adds this headroom over --max-request-bytes for its own receive limit, as etcd does. */
export const grpcOverheadBytes = 512 * 1024;
/** etcd's --max-txn-ops default. */
export const txnOpsDefault = 128;
/** etcd's --quota-backend-bytes default (0 means this default): 2 GiB. */
export const quotaBackendBytesDefault = 2 * 1024 * 1024 * 1024;
/** etcd's --snapshot-count default. */
export const snapshotCountDefault = 100_000;
/** Entries kept in the log behind a snapshot so slow followers can catch up without one. */
export const snapshotCatchUpEntriesDefault = 5_000;
/**
 * The catch-up entries kept behind a snapshot hold at most this many bytes of data (fewer entries
 * are kept when they are large): 16 MiB.
 */
export const snapshotCatchUpBytesMax = 16 * 1024 * 1024;
/**
 * Growth of the in-memory Raft log since its last compaction that triggers a snapshot even before
 * --snapshot-count entries were applied: 64 MiB. Entries of a few hundred bytes reach the count
 * first; this bounds the memory a log of large entries holds.
 */
export const raftLogGrowthBytesMax = 64 * 1024 * 1024;
/** etcd's --backend-batch-interval and --backend-batch-limit defaults (0 on the command line means these). */
export const backendBatchIntervalMsDefault = 100;
export const backendBatchLimitDefault = 10_000;
/** etcd's defaultLeaseCheckpointInterval: how often the leader records a lease's remaining TTL. */
export const leaseCheckpointIntervalMsDefault = 5 * 60 * 1_000;
/**
 * --initial-election-tick-advance: how often a starting member of a larger cluster looks for its
 * peer links, and how many times (etcd: every 50 ms for its 5 s connection read timeout).
 */
export const initialTickAdvancePollMs = 50;
export const initialTickAdvancePollsMax = 5_000 / initialTickAdvancePollMs;
/** etcd's revision-mode auto compaction looks at the store's revision this often (5 minutes). */
export const autoCompactionRevisionIntervalMsDefault = 5 * 60 * 1_000;
/** etcd's periodic auto compaction records a revision every period/10, the period counted as at most an hour. */
export const autoCompactionPeriodDivisor = 10;
export const autoCompactionPeriodMsMax = 60 * 60 * 1_000;
/** etcd's --auth-token default and its simple tokens' --auth-token-ttl default (seconds). */
export const authTokenDefault = 'simple';
export const simpleTokenTtlSecondsDefault = 300;
/** etcd's JWT ttl option default (5m). */
export const jwtTokenTtlMsDefault = 5 * 60 * 1_000;
/** etcd's --bcrypt-cost default, and bcrypt's bounds: a cost outside them falls back to the default. */
export const bcryptCostDefault = 10;
export const bcryptCostMin = 4;
export const bcryptCostMax = 31;
/**
 * Threads of the pool that hashes and checks passwords off the event loop: one per core, at most
 * this many (etcd checks passwords on every core its Go runtime has).
 */
export const bcryptThreadsMax = 16;
/** The pool's threads beyond its first end after idling this long; the first stays once started. */
export const bcryptThreadIdleMs = 30_000;
/** etcd's maxLeaseCheckpointBatchSize: checkpoints proposed in one entry at most. */
export const leaseCheckpointsPerBatchMax = 1_000;
/** etcd's MaxLeaseTTL: 9,000,000,000 seconds. */
export const leaseTtlSecondsMax = 9_000_000_000;
/** etcd's leaseRevokeRate: at most this many expired leases are handed over for revocation per second. */
export const leaseRevokeRatePerSecondMax = 1_000;
/** etcd's lessor loop period; each pass hands over at most half the per-second rate. */
export const leaseExpiryCheckIntervalMs = 500;
/** Expired leases one check hands over: leaseRevokeRate / 2, as etcd. */
export const leaseRevokesPerCheckMax = leaseRevokeRatePerSecondMax / 2;
/**
 * etcd's --experimental-warning-apply-duration default: an entry whose apply takes longer is logged
 * and counted in etcd_server_slow_apply_total.
 */
export const slowApplyMsDefault = 100;
/** etcd's --experimental-compaction-batch-limit default: revisions deleted per backend batch of a compaction. */
export const compactionBatchLimitDefault = 1_000;
/** etcd's maxPendingRevokes: revocations of expired leases in flight at once. */
export const leaseRevokesPendingMax = 16;
/** etcd's default wait before an expired lease whose revocation did not land is offered again. */
export const expiredLeaseRetryMsDefault = 3_000;
export const heartbeatIntervalMsDefault = 100;
export const electionTimeoutMsDefault = 1_000;
/** etcd refuses election timeouts over 50 s. */
export const electionTimeoutMsMax = 50_000;
/**
 * The backend's LMDB map size, so the largest backend database (a received snapshot's included):
 * 64 GiB. It is an address space reservation; the file grows only as used.
 */
export const backendDbBytesMax = 64 * 1024 * 1024 * 1024;
/** WAL segment size: 64 MiB, as etcd preallocates. */
export const walSegmentBytesDefault = 64 * 1024 * 1024;
/** A single WAL record may not exceed this (a larger length field is corruption). */
export const walRecordBytesMax = 256 * 1024 * 1024;
/** etcd's own WAL refuses a record of this many bytes or more (its maxWALEntrySizeLimit, 10 MB). */
export const etcdWalRecordBytesMax = 10 * 1024 * 1024;
/**
 * Txns nested inside txns (RequestOp.request_txn) deeper than this are refused while decoding: the
 * decoder and everything after it recurse per level, and a 1.5 MiB request could otherwise nest
 * some 200,000 levels and overflow the stack. etcd has no such bound, but its op budget
 * (--max-txn-ops, default 128) already refuses a deeper txn in validation.
 */
export const txnNestingDepthMax = 1_000;
/** Largest peer transport frame (one batch of Raft messages to one member); larger frames are refused. */
export const peerFrameBytesMax = 256 * 1024 * 1024;
/** Bytes queued on one peer's connection beyond which further messages to it are dropped (reported unreachable). */
export const peerBufferedBytesMax = 64 * 1024 * 1024;
/** First delay before redialing a peer; it doubles per failed attempt up to peerDialBackoffMsMax. */
export const peerDialBackoffMsDefault = 50;
export const peerDialBackoffMsMax = 2_000;
/** A peer connection that answers no ping within this interval is closed and redialed. */
export const peerPingIntervalMsDefault = 5_000;
/** etcd's --max-concurrent-streams default (Go's math.MaxUint32), which etcd still announces in its SETTINGS. */
export const maxConcurrentStreamsDefault = 2 ** 32 - 1;
/** etcd's --grpc-keepalive-min-time default: a client with streams open may PING this often. */
export const grpcKeepaliveMinTimeMsDefault = 5_000;
/** etcd's --grpc-keepalive-interval and --grpc-keepalive-timeout defaults, which are grpc-go's own too. */
export const grpcKeepaliveIntervalMsDefault = 2 * 60 * 60 * 1_000;
export const grpcKeepaliveTimeoutMsDefault = 20_000;
/** grpc-go's EnforcementPolicy.MinTime when etcd passes none (--grpc-keepalive-min-time 0). */
export const grpcKeepalivePolicyMinTimeMsDefault = 5 * 60 * 1_000;
/** grpc-go: with no stream open, a client PING sooner than this after its previous one is a strike. */
export const grpcPingWithoutStreamIntervalMs = 2 * 60 * 60 * 1_000;
/** grpc-go's maxPingStrikes: the strike after this many ends the connection with GOAWAY too_many_pings. */
export const grpcPingStrikesMax = 2;

// The watch path, named as etcd names its watch bounds.

/**
 * Encoded bytes a stream holds for its client before its watchers become victims. etcd bounds its
 * channel at 128 responses (chanBufLen), but its send loop drains that channel while the store is
 * still notifying; here one write's whole fan-out is queued before anything is sent, so the bound
 * must hold a revision for every watcher of a busy stream (1,000 watchers of ~80 bytes is 80 KiB).
 */
export const streamQueuedBytesMax = 4 * 1024 * 1024;
/** Bytes of queued responses handed to gRPC in one write (always at least one response). */
export const streamWriteBytesMax = 256 * 1024;
/** etcd's maxWatchersPerSync: unsynced watchers caught up in one sync pass. */
export const watchersPerSyncMax = 512;
/** Stored events one sync pass reads at most (always finishing the revision it is in). */
export const syncEventsMaxDefault = 10_000;
/**
 * Key and value bytes one sync pass hands out at most (finishing the revision it is in): catch-up
 * responses stay under grpc-js's default 4 MiB receive limit, which the npm etcd3 client keeps.
 */
export const syncBytesMaxDefault = 1024 * 1024;
/** etcd's --experimental-watch-progress-notify-interval default: 10 minutes. */
export const progressNotifyIntervalMsDefault = 10 * 60 * 1000;
/** etcd raises shorter progress intervals to this minimum. */
export const progressNotifyIntervalMsMin = 100;
/** etcd's syncWatchersLoop period when unsynced watchers make no headway. */
export const syncRetryIntervalMs = 100;
/** etcd's syncVictimsLoop period while victims wait. */
export const victimRetryIntervalMs = 10;
/** bbolt's page size on the platforms etcd runs on (the OS page size): 4 KiB. Snapshot files use it. */
export const boltPageBytesDefault = 4096;
/** The page sizes a bbolt file may declare and still be read: 512 B to 64 KiB, powers of two. */
export const boltPageBytesMin = 512;
export const boltPageBytesMax = 64 * 1024;
/** bbolt's DefaultFillPercent: a node that outgrows its page is split into nodes about half a page full. */
export const boltFillPercentDefault = 0.5;
/** The fill percents bbolt accepts; it takes the nearer bound for any other. */
export const boltFillPercentMin = 0.1;
export const boltFillPercentMax = 1.0;
/** The fill percent etcd's backend sets on the key bucket, whose writes append (UnsafeSeqPut): 90 %. */
export const etcdKeyBucketFillPercent = 0.9;
/** Levels of pages (branches above leaves, buckets within buckets) a bbolt file may nest; deeper is corrupt. */
export const boltTreeDepthMax = 64;
/** etcd's snapshotSendBufferSize: the database bytes one Maintenance.Snapshot response carries: 32 KiB. */
export const snapshotChunkBytes = 32 * 1024;
/** A backup's database bytes cross from the snapshot thread to the member's event loop in chunks of this many bytes. */
export const backupChunkBytes = 1024 * 1024;
/** Chunks the snapshot thread may build ahead of what the client stream has taken (memory: this many chunks). */
export const backupChunksAheadMax = 4;
/** The snapshot thread is kept this long after a save, so saves in a row do not each start one. */
export const backupThreadIdleMs = 10 * 60 * 1000;
/**
 * A backup's backend copy is made in this memory file system when it has room for it (and
 * backupCopyMemoryFreeBytesMin besides), else beside the backend. LMDB writes its copies with
 * O_DIRECT, so a copy on disk went to the device during the save, competing with the WAL's
 * fsyncs, and deleting it discarded its blocks.
 */
export const backupCopyMemoryDir = '/dev/shm';
/** What a backup's copy leaves free of backupCopyMemoryDir at least. */
export const backupCopyMemoryFreeBytesMin = 64 * 1024 * 1024;
/** The largest share of the machine's available memory a backup's copy in backupCopyMemoryDir may take. */
export const backupCopyMemoryShareMax = 0.5;
/** The snapshot thread reads the backend copy's pages in blocks of this many bytes. */
export const backupReadBlockBytes = 1024 * 1024;
/** The deepest B+tree LMDB builds (its cursor's page stack): a deeper walk of a data file is a damaged one. */
export const lmdbTreeDepthMax = 32;
/** How long the certificates --auto-tls and --peer-auto-tls generate stay valid: etcd's 365 days. */
export const selfSignedCertValidityMs = 365 * 24 * 60 * 60 * 1000;
/** How often a gRPC Health.Watch stream looks at the member's status to push a change. */
export const healthWatchPollMs = 200;
/** Election timeouts in a row without a leader after which etcd ends the streams that require one (maxNoLeaderCnt). */
export const noLeaderElectionTimeoutsMax = 3;
/** How often the leader looks at its members' versions to raise the cluster version (etcd's monitorVersionInterval). */
export const clusterVersionCheckIntervalMs = 4_000;
/** How long the leader waits for a member's GET /version on the peer port (etcd's peer ConnReadTimeout). */
export const peerVersionCallTimeoutMs = 5_000;
/** etcd's ReqTimeout base (5 s), to which two election timeouts are added (actors/member/clock.ts requestTimeoutMs). */
export const requestTimeoutBaseMs = 5_000;

// The client port's HTTP/2 server: what a client connection may make the member hold or do. etcd's
// grpc-go bounds little of this; these follow Go's x/net/http2 and nghttp2 where they have a bound.

/**
 * A header list larger than this (RFC 9113's count: name and value octets plus 32 per field) is
 * refused with RST_STREAM FRAME_SIZE_ERROR, as grpc-go refuses a truncated one; announced as
 * SETTINGS_MAX_HEADER_LIST_SIZE. grpc-go allows 16 MiB.
 */
export const headerListBytesMax = 1024 * 1024;
/**
 * A header block (HEADERS and its CONTINUATION frames, each frame's 9-byte header counted, so
 * empty CONTINUATION frames use it up too) larger than this ends the connection with GOAWAY
 * ENHANCE_YOUR_CALM: no legitimate block compresses to more than the list it carries.
 */
export const headerBlockBytesMax = headerListBytesMax;
/** One header name or value, before or after Huffman decoding; longer is a COMPRESSION_ERROR, as in Go's hpack. */
export const headerStringBytesMax = headerListBytesMax;
/**
 * Rapid reset (CVE-2023-44487): RST_STREAMs a client sends for streams still open, and the
 * streams we reset for its stream errors, are drawn from a bucket of this many that refills at
 * streamResetsPerSecondMax; an empty bucket ends the connection with GOAWAY ENHANCE_YOUR_CALM.
 * nghttp2's defaults.
 */
export const streamResetsBurstMax = 1_000;
export const streamResetsPerSecondMax = 33;
/** Empty DATA frames that neither end their stream nor follow any other frame; more in a row end the connection. */
export const emptyFramesInARowMax = 100;
/**
 * Bytes queued on a client's socket (answers and acknowledgements it has not read) above which
 * the server stops reading its frames and streaming calls wait, until the queue drains.
 */
export const clientQueuedBytesReadingMax = 4 * 1024 * 1024;
/**
 * Above this the client is not reading at all and the connection is closed. A client's own
 * flow-control windows (16 MiB at most for grpc-go's) keep a reading client far below it.
 */
export const clientQueuedBytesMax = 64 * 1024 * 1024;
/**
 * What a connection may make the member hold for requests it has not finished sending: the
 * buffered bytes of messages not yet whole, plus, for every stream the client has not ended, its
 * header list and streamStateBytes. A stream that would go over is refused (REFUSED_STREAM when
 * it opens, "etcdserver: too many requests" when its DATA arrives). This bounds the streams a
 * connection holds open even with --max-concurrent-streams at its unlimited default.
 */
export const unfinishedRequestBytesMax = 64 * 1024 * 1024;
/**
 * What one open stream is charged beyond its header list and buffered bytes. A unary call's
 * stream, call and decoded head measured 1,028 bytes of heap; twice that covers the heap's slack
 * around them (a member holding 64 MiB of such streams at 1 KiB grew its RSS by 98 MiB).
 */
export const streamStateBytes = 2_048;
/**
 * A stream whose request has not all arrived (a unary call not ended by the client, or a
 * streaming call that has sent no bytes) and that received nothing for this long is reset with
 * CANCEL.
 */
export const unfinishedStreamIdleMsMax = 30_000;
/** A client must complete its TLS handshake within this; grpc-go allows 120 s for handshake and preface. */
export const clientHandshakeMsMax = 10_000;
/**
 * Client connections accepted before the member is published wait unread, as they wait in the
 * kernel's accept queue for etcd (Go listens with a backlog of net.core.somaxconn, 4096 on current
 * Linux). Past this many, the oldest waiting one is closed: most likely its client gave up on it.
 */
export const clientConnectionsWaitingMax = 4_096;
/** After connecting (and the TLS handshake), a client must send its first bytes, the HTTP/2 preface and SETTINGS within this. */
export const clientPrefaceMsMax = 10_000;
/** The audit log's records wait at most this long before they are appended to its file. */
export const auditFlushIntervalMsDefault = 50;
/** The audit log's file is fsynced this often while records arrive (and on close). */
export const auditFsyncIntervalMsDefault = 1_000;
/** Audit records waiting to be written hold at most this many bytes; more are dropped (and counted). */
export const auditBufferedBytesMax = 16 * 1024 * 1024;
/** A new cluster's member waits at most this long for a leader before it gives up applying --auth-bootstrap-file. */
export const authBootstrapLeaderWaitMsMax = 60_000;
/** Role transitions and leader changes a member keeps for the dashboard; older ones are dropped. */
export const roleTransitionsMax = 64;
/** Dashboards (GET /dashboard/events) one member feeds at once; more are answered 503. */
export const dashboardFeedsMax = 16;
/**
 * How often the process metrics' event loop delay monitor (nodejs_eventloop_lag_*) samples the
 * member thread's loop. prom-client's default is every 10 ms, which woke an idle member's thread
 * 100 times a second for nothing else; the monitor also starts only once /metrics is first read.
 */
export const eventLoopLagResolutionMs = 1_000;
/** How often an open dashboard feed pushes the cluster view. */
export const dashboardFeedIntervalMs = 1_000;
/** A peer that has not answered the dashboard's status call in this long is shown unreachable. */
export const dashboardPeerCallMsMax = 800;
/** A dashboard feed whose unsent events exceed this many bytes (a reader that stopped reading) is ended. */
export const dashboardFeedBufferedBytesMax = 1024 * 1024;

/** Inspection events a member holds while its inspector connection is down or slow; more are dropped and counted. */
export const inspectQueueEventsMax = 1_000;
/** Bytes written to the inspector socket but not yet sent, beyond which events wait in the queue. */
export const inspectBufferedBytesMax = 1024 * 1024;
/** First delay before redialing the inspector; it doubles per failed attempt up to inspectDialBackoffMsMax. */
export const inspectDialBackoffMsDefault = 100;
export const inspectDialBackoffMsMax = 5_000;
/** Messages of one MESSAGE batch an inspection event describes; the rest are only counted. */
export const inspectBatchMessagesMax = 16;
/** Recent inspection messages `tsetcd inspect` replays to a viewer that connects late (as @statelyai/inspect's server does). */
export const inspectRelayReplayMax = 200;
/** Sessions whose registration (machine definition) `tsetcd inspect` keeps for late viewers; the oldest go first. */
export const inspectRelaySessionsMax = 256;
/** Bytes queued to one inspection viewer beyond which `tsetcd inspect` skips it until it catches up. */
export const inspectRelayViewerBytesMax = 4 * 1024 * 1024;

/** Readies a member alone may have waiting on the WAL at once (its raft loop's pipeline depth; src/raft/ready-order.ts). */
export const readiesInFlightMax = 4;

/** Go's resolver (etcdctl's --discovery-srv): seconds per query to one server, unless resolv.conf's `options timeout:n`. */
export const dnsQueryTimeoutSecondsDefault = 5;
/** Go's resolver: rounds over the servers, unless resolv.conf's `options attempts:n`. */
export const dnsAttemptsDefault = 2;
/**
 * Distinct client API versions etcd_server_client_requests_total keeps a series for, per request
 * type: the label comes from the client's metadata, so without a bound a client could grow the
 * metrics without end; calls naming a version beyond the bound are counted as "unknown".
 */
export const clientApiVersionLabelsMax = 64;
