/**
 * `etcdctl lock` and `etcdctl elect`. etcdctl runs clientv3's Mutex and Election over a session
 * (a lease it keeps alive); tsetcdctl keeps the same session and asks the server's Lock and
 * Election services, which run the same recipes under that lease, so the keys left in the store
 * (`<name>/<lease ID in hex>`, held by the session's lease) are the ones etcdctl leaves.
 */
import { rpcErrorText, type EtcdConnection, type Message } from './client.js';
import type { CommandContext } from './context.js';
import { runToEnd } from './exec.js';
import { ExitCode, exitWithError } from './output.js';

/** clientv3/concurrency's session TTL when none is given (elect uses it). */
const sessionTtlSecondsDefault = 60;
/** clientv3 renews a lease after a third of its TTL. */
const keepAliveTtlFraction = 3;

/** A lease kept alive as clientv3's session keeps it; `expired` settles when it is lost. */
class Session {
  private stream: Awaited<ReturnType<EtcdConnection['duplex']>> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  readonly expired: Promise<void>;
  private expire: () => void = () => undefined;

  private constructor(
    readonly lease: string,
    private readonly ttlSeconds: number,
  ) {
    this.expired = new Promise((resolve) => (this.expire = resolve));
  }

  static async open(connection: EtcdConnection, ttlSeconds: number): Promise<Session> {
    const granted = await connection.call('Lease', 'LeaseGrant', { TTL: String(ttlSeconds) }, undefined);
    const session = new Session(String(granted.ID), ttlSeconds);
    const stream = await connection.duplex('Lease', 'LeaseKeepAlive', true);
    session.stream = stream;
    stream.on('data', (answer: Message) => {
      if (BigInt(answer.TTL as string) <= 0n) session.lost();
    });
    stream.on('error', () => session.lost());
    stream.on('end', () => session.lost());
    session.renew();
    return session;
  }

  private renew(): void {
    if (this.closed) return;
    this.stream?.write({ ID: this.lease });
    this.timer = setTimeout(() => this.renew(), (this.ttlSeconds * 1000) / keepAliveTtlFraction);
  }

  private lost(): void {
    if (this.closed) return;
    this.close();
    this.expire();
  }

  /** Stops renewing; like etcdctl, the lease is left to expire rather than revoked. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.stream?.cancel();
  }
}

/** Resolves on the first SIGINT or SIGTERM, which etcdctl takes as "let go and leave". */
function untilSignal(): { signalled: Promise<void>; controller: AbortController; release: () => void } {
  const controller = new AbortController();
  let release = (): void => undefined;
  const signalled = new Promise<void>((resolve) => {
    const onSignal = (): void => {
      controller.abort();
      resolve();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    release = () => {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
    };
  });
  return { signalled, controller, release };
}

/** A call that an abort turns into Go's "context canceled", and any failure into etcdctl's exit 1. */
async function recipeCall(
  context: CommandContext,
  service: 'Lock' | 'Election' | 'KV',
  method: string,
  request: Message,
  signal?: AbortSignal,
): Promise<Message> {
  try {
    return await context.client().call(service, method, request, undefined, signal);
  } catch (error) {
    if (signal?.aborted === true) exitWithError(context.output, ExitCode.error, 'context canceled');
    return exitWithError(context.output, ExitCode.error, rpcErrorText(error));
  }
}

async function openSession(context: CommandContext, ttlSeconds: number): Promise<Session> {
  try {
    return await Session.open(context.client(), ttlSeconds);
  } catch (error) {
    return exitWithError(context.output, ExitCode.error, rpcErrorText(error));
  }
}

/** `etcdctl lock <lockname> [exec-command arg1 arg2 ...]`. */
export async function runLock(context: CommandContext): Promise<void> {
  const { output, args } = context;
  if (args.length === 0)
    exitWithError(output, ExitCode.badArgs, 'lock takes a lock name argument and an optional command to execute');
  context.client();
  const ttl = Number(context.flags.int64('ttl'));
  const session = await openSession(context, ttl);
  const { signalled, controller, release } = untilSignal();
  try {
    const locked = await recipeCall(
      context,
      'Lock',
      'Lock',
      { name: Buffer.from(args[0] ?? ''), lease: session.lease },
      controller.signal,
    );
    const key = locked.key as Buffer;
    if (args.length > 1) {
      const env = {
        ETCD_LOCK_KEY: key.toString(),
        ETCD_LOCK_REV: String(locked.header?.revision ?? 0),
        ...context.env,
      };
      const failure = await runToEnd(args.slice(1), env);
      await recipeCall(context, 'Lock', 'Unlock', { key });
      if (failure !== undefined) exitWithError(output, ExitCode.error, failure);
      return;
    }
    const held = await recipeCall(context, 'KV', 'Range', { key }, controller.signal);
    if ((held.kvs as Message[]).length === 0) exitWithError(output, ExitCode.error, 'lock lost on init');
    context.printer().get(held);
    const ending = await Promise.race([
      signalled.then(() => 'signal' as const),
      session.expired.then(() => 'expired' as const),
    ]);
    if (ending === 'expired') exitWithError(output, ExitCode.error, 'session expired');
    await recipeCall(context, 'Lock', 'Unlock', { key });
  } finally {
    release();
    session.close();
  }
}

/** `etcdctl elect <election-name> [proposal]` and `elect -l <election-name>`. */
export async function runElect(context: CommandContext): Promise<void> {
  const { output, args } = context;
  if (args.length !== 1 && args.length !== 2)
    exitWithError(output, ExitCode.badArgs, 'elect takes one election name argument and an optional proposal argument');
  context.client();
  const listen = context.flags.bool('listen');
  if (args.length === 1 && !listen) exitWithError(output, ExitCode.badArgs, 'no proposal argument but -l not set');
  if (args.length === 2 && listen) exitWithError(output, ExitCode.badArgs, 'proposal given but -l is set');
  const name = Buffer.from(args[0] ?? '');
  const session = await openSession(context, sessionTtlSecondsDefault);
  const { signalled, controller, release } = untilSignal();
  try {
    if (listen) await observe(context, name, signalled);
    else await campaign(context, name, Buffer.from(args[1] ?? ''), session, signalled, controller.signal);
  } finally {
    release();
    session.close();
  }
}

async function observe(context: CommandContext, name: Buffer, signalled: Promise<void>): Promise<void> {
  const stream = await context.client().serverStream('Election', 'Observe', { name });
  const printer = context.printer();
  let interrupted = false;
  void signalled.then(() => {
    interrupted = true;
    stream.cancel();
  });
  await new Promise<void>((resolve) => {
    stream.on('data', (leader: Message) => {
      // clientv3's Observe hands etcdctl a GetResponse holding the leader's key.
      printer.get({ header: leader.header, kvs: [leader.kv], more: false, count: '1' });
    });
    stream.on('error', () => resolve());
    stream.on('end', () => resolve());
  });
  if (!interrupted) exitWithError(context.output, ExitCode.error, 'elect: observer lost');
}

async function campaign(
  context: CommandContext,
  name: Buffer,
  proposal: Buffer,
  session: Session,
  signalled: Promise<void>,
  signal: AbortSignal,
): Promise<void> {
  const request = { name, lease: session.lease, value: proposal };
  const elected = await recipeCall(context, 'Election', 'Campaign', request, signal);
  const leader = elected.leader as Message;
  const current = await recipeCall(context, 'KV', 'Range', { key: leader.key }, signal);
  context.printer().get(current);
  const ending = await Promise.race([
    signalled.then(() => 'signal' as const),
    session.expired.then(() => 'expired' as const),
  ]);
  if (ending === 'expired') exitWithError(context.output, ExitCode.error, 'elect: session expired');
  await recipeCall(context, 'Election', 'Resign', { leader });
}
