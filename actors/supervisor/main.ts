/**
 * `tsetcd`: parses etcd's flags, then supervises the member actor (a worker thread) through its
 * comlink control API, and stops it cleanly on SIGINT/SIGTERM, then ends by that signal as etcd does.
 */
import { constants } from 'node:os';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { memberIdFor } from '../../src/membership/ids.js';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import {
  ConfigError,
  FlagError,
  clientUrlsTlsProblem,
  loadConfig,
  usageText,
  type MemberConfig,
} from '../../src/config/config.js';
import { cipherSuitesProblem } from '../../src/config/cipher-suites.js';
import { applyAutoTls } from './auto-tls.js';
import { etcdApiVersion, tsetcdVersion } from '../../src/api/version.js';
import { goSignalNames, type StopSignal } from '../../src/lib/go-signals.js';
import { createLogger, LogOutputError, type Logger } from '../shared/logger.js';
import { memberThreadLimits, memberWorkerUrl } from './member-prestart.js';
import type { MemberControl, MemberFatalMessage, MemberStatus, MemberWorkerData } from './thread-protocol.js';
import { handOver } from './thread-start.js';
// Loads the failpoint registry and its GOFAIL_HTTP endpoint only under the test switch.
import '../shared/failpoints.js';

/** Prints versions the way `etcd --version` does, naming ours and the etcd API we speak. */
function printVersion(): void {
  process.stdout.write(
    `tsetcd Version: ${tsetcdVersion}\netcd API Version: ${etcdApiVersion}\nNode Version: ${process.version}\nNode OS/Arch: ${process.platform}/${process.arch}\n`,
  );
}

/** A running member actor as the supervisor sees it. */
export interface MemberHandle {
  control: Comlink.Remote<MemberControl>;
  worker: Worker;
  exited: Promise<number>;
  /**
   * Resolves once the member is published and serves clients (it logs that itself), which needs a
   * quorum; rejects when its thread exits first.
   */
  serving: Promise<MemberStatus>;
}

/** Starts one member actor in a worker thread (or hands its data to one from prestartMemberWorker). */
export function startMemberActor(
  config: MemberConfig,
  logger: Logger,
  onFatal: (message: string, logged: boolean) => void,
  peerPorts?: Map<bigint, MessagePort>,
  prestarted?: Worker,
): MemberHandle {
  const workerData: MemberWorkerData = { config };
  if (peerPorts !== undefined) workerData.peerPorts = [...peerPorts].map(([id, port]) => [id.toString(), port]);
  const transferList = peerPorts === undefined ? [] : [...peerPorts.values()];
  const worker =
    prestarted ?? new Worker(memberWorkerUrl, { workerData, transferList, resourceLimits: memberThreadLimits });
  if (prestarted !== undefined) handOver(prestarted, workerData, transferList);
  worker.on('message', (message: MemberFatalMessage | unknown) => {
    if (typeof message === 'object' && message !== null && (message as MemberFatalMessage).type === 'fatal') {
      const fatal = message as MemberFatalMessage;
      onFatal(fatal.message, fatal.logged === true);
    }
  });
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  worker.once('error', (error) => {
    logger.fatal({ member: config.name, error: error.message }, 'member actor crashed');
    onFatal(error.message, false);
  });
  const control = Comlink.wrap<MemberControl>(nodeEndpoint(worker));
  const serving = Promise.race([
    control.ready(),
    exited.then((code) => Promise.reject(new Error(`member worker exited with code ${code}`))),
  ]);
  return { control, worker, exited, serving };
}

/**
 * Runs member actors until SIGINT/SIGTERM, then stops them all cleanly. As in etcd, signals are
 * handled once every member serves clients: before that (a member waiting for a quorum to publish
 * it) a signal ends the process at once, with nothing logged.
 */
async function supervise(
  configs: MemberConfig[],
  logger: Logger,
  peerPorts: (Map<bigint, MessagePort> | undefined)[],
  prestarted?: Worker,
): Promise<void> {
  let stopping = false;
  const fail = (message: string, logged: boolean) => {
    if (!logged) logger.fatal({ error: message }, 'member stopped on a fatal error');
    process.exit(1);
  };
  const handles = configs.map((config, position) =>
    startMemberActor(config, logger, fail, peerPorts[position], position === 0 ? prestarted : undefined),
  );
  await Promise.all(handles.map((handle) => handle.serving));
  const stop = async (signal: StopSignal) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal: goSignalNames[signal] }, 'received signal; shutting down');
    const forceTimer = setTimeout(() => process.exit(1), 10_000);
    forceTimer.unref();
    try {
      // Members of one process stop together: none is left to take over a leadership.
      await Promise.all(handles.map((handle) => handle.control.stop(handles.length === 1)));
    } finally {
      await Promise.all(handles.map((handle) => handle.worker.terminate()));
      endBySignal(signal);
    }
  };
  for (const signal of Object.keys(goSignalNames) as StopSignal[]) process.on(signal, () => void stop(signal));
}

/** How long the process may outlive the signal it sent itself before it exits with the shell's code for it. */
const signalEndWaitMs = 1_000;

/**
 * Ends the process by `signal` after the clean stop, as etcd does, so a parent sees the signal
 * (a shell: exit 143 for SIGTERM, 130 for SIGINT) rather than a normal exit. As process 1 (where
 * the kernel would ignore the signal) it exits 0, as etcd does.
 */
function endBySignal(signal: StopSignal): void {
  if (process.pid === 1) process.exit(0);
  // With no listener left Node restores the signal's default action, which ends the process.
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
  setTimeout(() => process.exit(128 + constants.signals[signal]), signalEndWaitMs);
}

/** Members of `tsetcd cluster`: etcd's local Procfile layout (infra1 on 2379/2380, infra2 on 22379/22380, ...). */
export const clusterMembersMax = 6;

function clusterMemberArgs(position: number, members: number): string[] {
  const prefix = position === 0 ? '' : String(position + 1);
  const client = `http://127.0.0.1:${prefix}2379`;
  const peer = `http://127.0.0.1:${prefix}2380`;
  const initialCluster = Array.from(
    { length: members },
    (_unused, other) => `infra${other + 1}=http://127.0.0.1:${other === 0 ? '' : other + 1}2380`,
  ).join(',');
  return [
    '--name',
    `infra${position + 1}`,
    '--listen-client-urls',
    client,
    '--advertise-client-urls',
    client,
    '--listen-peer-urls',
    peer,
    '--initial-advertise-peer-urls',
    peer,
    '--initial-cluster-token',
    'etcd-cluster-1',
    '--initial-cluster',
    initialCluster,
  ];
}

/** `tsetcd cluster [--members N] [etcd flags for every member]`: N members as worker threads, linked by MessagePorts. */
async function runCluster(argv: string[]): Promise<void> {
  let members = 3;
  const shared: string[] = [];
  for (let position = 0; position < argv.length; position++) {
    const argument = argv[position] as string;
    if (argument === '--members' || argument.startsWith('--members=')) {
      const text = argument.includes('=') ? argument.slice(argument.indexOf('=') + 1) : argv[++position];
      members = Number(text);
      if (!Number.isInteger(members) || members < 1 || members > clusterMembersMax) {
        process.stderr.write(`invalid value "${text}" for flag -members: must be 1 to ${clusterMembersMax}\n`);
        process.exit(2);
      }
    } else {
      shared.push(argument);
    }
  }
  const configs: MemberConfig[] = [];
  for (let position = 0; position < members; position++) {
    const loaded = loadOrExit([...clusterMemberArgs(position, members), ...shared], {});
    // `tsetcd cluster --help` (or --version) answers and starts nothing.
    if (loaded.printVersion) return printVersion();
    if (loaded.printHelp) return void process.stdout.write(`${usageText()}\n`);
    configs.push(loaded.config);
  }
  const logger = loggerOrExit(configs[0] as MemberConfig);
  const ids = configs.map((config) => memberIdFor(config.initialAdvertisePeerUrls, config.initialClusterToken));
  const peerPorts = configs.map(() => new Map<bigint, MessagePort>());
  for (let first = 0; first < members; first++) {
    for (let second = first + 1; second < members; second++) {
      const channel = new MessageChannel();
      peerPorts[first]?.set(ids[second] as bigint, channel.port1);
      peerPorts[second]?.set(ids[first] as bigint, channel.port2);
    }
  }
  logger.info({ members, 'tsetcd-version': tsetcdVersion }, 'starting a single-host cluster');
  await supervise(configs, logger, peerPorts);
}

function loadOrExit(argv: string[], env: NodeJS.ProcessEnv) {
  try {
    return loadConfig({ argv, env });
  } catch (error) {
    if (error instanceof FlagError) {
      process.stderr.write(`${error.message}\n${usageText()}\n`);
      process.exit(2);
    }
    if (error instanceof ConfigError) {
      createLogger('info').fatal({ error: error.message }, 'failed to verify flags');
      process.exit(1);
    }
    throw error;
  }
}

/** The logger --log-outputs asks for; a file that cannot be opened stops the start, as in etcd. */
function loggerOrExit(config: MemberConfig): Logger {
  try {
    return createLogger(config.logLevel, config.logOutputs);
  } catch (error) {
    if (!(error instanceof LogOutputError)) throw error;
    createLogger('info').fatal({ error: error.message }, 'failed to verify flags');
    process.exit(1);
  }
}

/**
 * Entry point for `tsetcd [flags]`. `prestarted` is a member thread from prestartMemberWorker,
 * started before this module loaded; it is used for the member or stopped.
 */
export async function run(argv: string[], prestarted?: Worker): Promise<void> {
  if (argv[0] === 'cluster') {
    void prestarted?.terminate();
    await runCluster(argv.slice(1));
    return;
  }
  if (argv[0] === 'inspect') {
    void prestarted?.terminate();
    const { runInspectRelay } = await import('../inspect/relay.js');
    await runInspectRelay(argv.slice(1));
    return;
  }
  if (argv[0] === 'machines') {
    void prestarted?.terminate();
    const { runMachines } = await import('../inspect/machines-export.js');
    runMachines(argv.slice(1));
    return;
  }
  const loaded = loadOrExit(argv, process.env);
  if (loaded.printVersion || loaded.printHelp) void prestarted?.terminate();
  if (loaded.printVersion) {
    printVersion();
    return;
  }
  if (loaded.printHelp) {
    process.stdout.write(`${usageText()}\n`);
    return;
  }
  const logger = loggerOrExit(loaded.config);
  for (const warning of loaded.warnings) logger.warn(warning);
  logger.info(
    {
      'tsetcd-version': tsetcdVersion,
      'node-version': process.version,
      name: loaded.config.name,
      'data-dir': loaded.config.dataDir,
    },
    'starting tsetcd',
  );
  // etcd refuses unknown cipher suites, makes the auto-TLS certificates, then refuses an https://
  // client URL without key and cert, all before the member starts.
  const cipherProblem = cipherSuitesProblem(loaded.config.clientTls.cipherSuites ?? []);
  const config = cipherProblem === undefined ? applyAutoTls(loaded.config, logger) : loaded.config;
  const tlsProblem = cipherProblem ?? clientUrlsTlsProblem(config);
  if (tlsProblem !== undefined) {
    logger.fatal({ error: tlsProblem }, 'discovery failed');
    process.exit(1);
  }
  try {
    await supervise([config], logger, [undefined], prestarted);
  } catch (error) {
    logger.fatal({ error: (error as Error).message }, 'failed to start member');
    process.exit(1);
  }
}
