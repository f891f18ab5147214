/**
 * Entry point of a member actor's worker thread: starts the member, serves its client URLs and
 * exposes MemberControl to the supervisor through comlink.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { formatId } from '../src/membership/ids.js';
import { createLogger } from './logger.js';
import { Member } from './member.js';
import type { MemberControl, MemberFatalMessage, MemberStatus, MemberWorkerData } from './protocol.js';
import { startClientServer, type ClientServer } from './client-server.js';

const { config, peerPorts } = workerData as MemberWorkerData;
const logger = createLogger(config.logLevel, config.logOutputs, { member: config.name });
const port = parentPort;
if (port === null) throw new Error('member-worker must run in a worker thread');

let member: Member | undefined;
let clientServer: ClientServer | undefined;

function reportFatal(error: Error): void {
  const message: MemberFatalMessage = { type: 'fatal', message: error.message };
  port?.postMessage(message);
}

const starting = (async () => {
  const ports = peerPorts === undefined ? undefined : new Map(peerPorts.map(([id, port]) => [BigInt(id), port] as const));
  member = await Member.start(config, logger, reportFatal, ports);
  clientServer = await startClientServer(config, member, logger);
})();
starting.catch((error: Error) => {
  logger.fatal({ error: error.message }, 'failed to start member');
  reportFatal(error);
});

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
  async stop() {
    await clientServer?.close();
    await member?.stop();
  },
};

Comlink.expose(control, nodeEndpoint(port));
