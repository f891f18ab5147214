/**
 * `tsetcd`: parses etcd's flags, then supervises the member actor (a worker thread) through its
 * comlink control API, and stops it cleanly on SIGINT/SIGTERM.
 */
import { Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { ConfigError, FlagError, loadConfig, usageText, type MemberConfig } from '../src/config/config.js';
import { etcdApiVersion, tsetcdVersion } from '../src/api/version.js';
import { createLogger, type Logger } from './logger.js';
import type { MemberControl, MemberFatalMessage, MemberWorkerData } from './protocol.js';

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
}

/** Starts one member actor in a worker thread and waits until it serves clients. */
export async function startMemberActor(config: MemberConfig, logger: Logger, onFatal: (message: string) => void): Promise<MemberHandle> {
  const workerData: MemberWorkerData = { config };
  const worker = new Worker(new URL('./member-worker.js', import.meta.url), { workerData });
  worker.on('message', (message: MemberFatalMessage | unknown) => {
    if (typeof message === 'object' && message !== null && (message as MemberFatalMessage).type === 'fatal') {
      onFatal((message as MemberFatalMessage).message);
    }
  });
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  worker.once('error', (error) => {
    logger.fatal({ member: config.name, error: error.message }, 'member actor crashed');
    onFatal(error.message);
  });
  const control = Comlink.wrap<MemberControl>(nodeEndpoint(worker));
  const status = await Promise.race([control.ready(), exited.then((code) => Promise.reject(new Error(`member worker exited with code ${code}`)))]);
  logger.info({ member: config.name, 'member-id': status.memberId, 'client-urls': status.clientUrls }, 'ready to serve client requests');
  return { control, worker, exited };
}

async function runMember(config: MemberConfig, logger: Logger): Promise<void> {
  let stopping = false;
  const fail = (message: string) => {
    logger.fatal({ error: message }, 'member stopped on a fatal error');
    process.exit(1);
  };
  const handle = await startMemberActor(config, logger, fail);
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'received signal; shutting down');
    const forceTimer = setTimeout(() => process.exit(1), 10_000);
    forceTimer.unref();
    try {
      await handle.control.stop();
    } finally {
      await handle.worker.terminate();
      process.exit(0);
    }
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

/** Entry point for `tsetcd [flags]`. */
export async function run(argv: string[]): Promise<void> {
  let loaded;
  try {
    loaded = loadConfig({ argv, env: process.env });
  } catch (error) {
    if (error instanceof FlagError) {
      process.stderr.write(`${error.message}\n${usageText()}\n`);
      process.exit(2);
    }
    if (error instanceof ConfigError) {
      const logger = createLogger('info');
      logger.fatal({ error: error.message }, 'failed to verify flags');
      process.exit(1);
    }
    throw error;
  }
  if (loaded.printVersion) {
    printVersion();
    return;
  }
  if (loaded.printHelp) {
    process.stdout.write(`${usageText()}\n`);
    return;
  }
  const logger = createLogger(loaded.config.logLevel, loaded.config.logOutputs);
  for (const warning of loaded.warnings) logger.warn(warning);
  logger.info({ 'tsetcd-version': tsetcdVersion, 'node-version': process.version, name: loaded.config.name, 'data-dir': loaded.config.dataDir }, 'starting tsetcd');
  try {
    await runMember(loaded.config, logger);
  } catch (error) {
    logger.fatal({ error: (error as Error).message }, 'failed to start member');
    process.exit(1);
  }
}
