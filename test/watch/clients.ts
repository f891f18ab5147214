/** Watch clients for the stream tests: a long-running etcdctl watch and a raw grpc-js Watch stream. */
import { spawn, type ChildProcess } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { loadProtos, type WireMessage } from '../../src/api/proto-wire.js';
import { eventWaitMsMax } from '../support/waits.js';

/** Polls `ready` every few milliseconds until it holds or `timeoutMs` passes. */
export async function waitUntil(ready: () => boolean, what: string, timeoutMs = eventWaitMsMax): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** `etcdctl watch ...` running in the background; killed by its PID when stopped or after the bound. */
export class EtcdctlWatch {
  stdout = '';
  stderr = '';
  exitCode: number | null | undefined;
  private readonly child: ChildProcess;
  private readonly killTimer: NodeJS.Timeout;

  /** `lifetimeMs` outlives the waits a test makes on the watch, so it is not killed while a wait still runs. */
  constructor(endpoint: string, args: readonly string[], lifetimeMs = 2 * eventWaitMsMax) {
    this.child = spawn('/usr/bin/etcdctl', ['--endpoints', endpoint, 'watch', ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (chunk: Buffer) => (this.stdout += chunk.toString('utf8')));
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString('utf8')));
    this.child.once('close', (code) => {
      this.exitCode = code;
      clearTimeout(this.killTimer);
    });
    this.killTimer = setTimeout(() => this.kill(), lifetimeMs);
  }

  /** JSON lines printed so far (for -w json). */
  json(): Array<Record<string, unknown>> {
    return this.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  private kill(): void {
    if (this.exitCode === undefined && this.child.pid !== undefined) process.kill(this.child.pid, 'SIGKILL');
  }

  /** Kills the process (if still running) and waits for it to go. */
  async stop(): Promise<void> {
    clearTimeout(this.killTimer);
    this.kill();
    await waitUntil(() => this.exitCode !== undefined, 'etcdctl to exit');
  }
}

type WatchClientConstructor = new (
  address: string,
  credentials: grpc.ChannelCredentials,
) => grpc.Client & {
  Watch(): grpc.ClientDuplexStream<WireMessage, WireMessage>;
};

/** One Watch stream spoken directly, to see every response the server sends. */
export class RawWatch {
  readonly responses: WireMessage[] = [];
  ended = false;
  private readonly client: grpc.Client;
  readonly call: grpc.ClientDuplexStream<WireMessage, WireMessage>;

  constructor(endpoint: string) {
    const root = grpc.loadPackageDefinition(loadProtos()) as unknown as {
      etcdserverpb: { Watch: WatchClientConstructor };
    };
    const client = new root.etcdserverpb.Watch(endpoint, grpc.credentials.createInsecure());
    this.client = client;
    this.call = client.Watch();
    this.call.on('data', (response: WireMessage) => this.responses.push(response));
    this.call.on('error', () => (this.ended = true));
    this.call.on('end', () => (this.ended = true));
  }

  create(request: Record<string, unknown>): void {
    this.call.write({ createRequest: request });
  }

  cancel(watchId: number): void {
    this.call.write({ cancelRequest: { watchId: String(watchId) } });
  }

  progress(): void {
    this.call.write({ progressRequest: {} });
  }

  /** Responses for one watch id. */
  of(watchId: number): WireMessage[] {
    return this.responses.filter((response) => response.watchId === String(watchId));
  }

  /** Events received for `watchId` as "TYPE key@rev". */
  events(watchId: number): string[] {
    return this.of(watchId).flatMap((response) =>
      (response.events as Array<{ type: number; kv: { key: Buffer; modRevision: string } }>).map(
        (event) => `${event.type === 0 ? 'PUT' : 'DELETE'} ${event.kv.key.toString('latin1')}@${event.kv.modRevision}`,
      ),
    );
  }

  async waitFor(ready: (responses: WireMessage[]) => boolean, what: string): Promise<void> {
    await waitUntil(() => ready(this.responses), what);
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}
