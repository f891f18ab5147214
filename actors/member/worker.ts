/**
 * Entry point of a member actor's worker thread: starts the member, serves its client URLs once it
 * is published and exposes MemberControl to the supervisor through comlink.
 *
 * `tsetcd` starts this thread before the supervisor has read its flags (actors/supervisor/member-prestart.ts):
 * the thread loads its modules meanwhile and takes its MemberWorkerData as its first message.
 * Threads started with workerData (single-host mode) begin at once.
 */
import { parentPort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { formatId } from '../../src/membership/ids.js';
import { ConfigError } from '../../src/config/config-error.js';
import { createLogger, type Logger } from '../shared/logger.js';
import type { Member } from './member.js';
import type {
  MemberControl,
  MemberFatalMessage,
  MemberStatus,
  MemberWorkerData,
} from '../supervisor/thread-protocol.js';
import type { ClientServer } from '../client/services.js';
import { startInspectionIfAsked } from '../inspect/member-inspection.js';
import type { MemberInspection } from '../inspect/stream.js';
import { WalClient } from '../wal/client.js';
import { onThreadData } from '../supervisor/thread-start.js';
import { nameThread } from '../shared/thread-name.js';

const port = parentPort;
if (port === null) throw new Error('the member module must run in a worker thread');
nameThread('tsetcd-member');
// The WAL thread and the member's heavier modules start loading before the data arrives.
const walThread = WalClient.prestart();
const modules = Promise.all([import('./member.js'), import('../client/services.js')]);

let member: Member | undefined;
let clientServer: ClientServer | undefined;
let inspection: MemberInspection | undefined;

function reportFatal(error: Error, logged = false): void {
  const message: MemberFatalMessage = { type: 'fatal', message: error.message, logged };
  port?.postMessage(message);
}

async function start({ config, peerPorts }: MemberWorkerData, logger: Logger): Promise<void> {
  const [{ Member }, { startClientServer }] = await modules;
  const ports =
    peerPorts === undefined ? undefined : new Map(peerPorts.map(([id, port]) => [BigInt(id), port] as const));
  inspection = await startInspectionIfAsked(config, logger);
  member = await Member.start(config, logger, (error) => reportFatal(error), ports, walThread, inspection?.inspect);
  // As etcd: the client URLs are bound first but answer nothing until the member is published,
  // which needs a quorum; the metrics URLs answer at once.
  clientServer = await startClientServer(config, member, logger);
  await member.publish();
  clientServer.serve();
  member.preparePasswordChecks();
}

let config: MemberWorkerData['config'];
let starting: Promise<void>;
let memberLogger: Logger;

function begin(data: MemberWorkerData): void {
  config = data.config;
  const logger = createLogger(config.logLevel, config.logOutputs, { member: config.name });
  memberLogger = logger;
  starting = start(data, logger);
  starting.catch((error: Error) => {
    if (error instanceof ConfigError) {
      // etcd's words for a start its flags make impossible (an --initial-cluster that does not
      // match this member, say).
      logger.warn({ error: error.message }, 'failed to start etcd');
      logger.fatal({ error: error.message }, 'discovery failed');
      reportFatal(error, true);
      return;
    }
    logger.fatal({ error: error.message }, 'failed to start member');
    reportFatal(error);
  });
  Comlink.expose(control, nodeEndpoint(port!));
}

function currentStatus(): MemberStatus {
  if (member === undefined) throw new Error('member is not started');
  const status = member.status();
  return {
    name: config.name,
    memberId: formatId(status.memberId),
    clusterId: formatId(status.clusterId),
    leaderId: formatId(status.leaderId),
    role: status.role,
    raftTerm: status.raftTerm,
    raftIndex: status.raftIndex,
    raftAppliedIndex: status.raftAppliedIndex,
    revision: status.revision,
    compactRevision: status.compactRevision,
    backendBytes: status.backendBytes,
    clientUrls: clientServer?.urls ?? [],
  };
}

const control: MemberControl = {
  async ready() {
    await starting;
    return currentStatus();
  },
  async status() {
    return currentStatus();
  },
  // etcd's order: client listeners first, then leadership, the member, and the peer listeners.
  async stop(transferLeadership) {
    const fields = {
      name: config.name,
      'data-dir': config.dataDir,
      'advertise-peer-urls': config.initialAdvertisePeerUrls,
      'advertise-client-urls': config.advertiseClientUrls,
    };
    memberLogger.info(fields, 'closing etcd server');
    await clientServer?.close();
    if (transferLeadership) await member?.transferLeadershipBeforeStop();
    await member?.stop();
    inspection?.stream.stop();
    memberLogger.info(fields, 'closed etcd server');
  },
};

// begin() exposes control while the data message is handled, so the supervisor's calls, which
// follow it, find comlink listening.
onThreadData(begin);
