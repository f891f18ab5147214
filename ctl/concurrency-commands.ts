/**
 * `etcdctl lock` and `etcdctl elect`. etcdctl runs clientv3's Mutex and Election over a session
 * (a lease it keeps alive); tsetcdctl keeps the same session and asks the server's Lock and
 * Election services, which run the same recipes under that lease, so the keys left in the store
 * (`<name>/<lease ID in hex>`, held by the session's lease) are the ones etcdctl leaves.
 */
import { rpcErrorText, type EtcdConnection, type Message } from './client.js';
import type { CommandContext } from './context.js';
import { runToEnd } from './exec.js';
import { prefixRangeEnd } from './kv-commands.js';
import { LeaseKeeper, firstAnswerWaitMs } from './lease-keeper.js';
import { ExitCode, exitWithError } from './output.js';

/** clientv3/concurrency's session TTL when none is given (elect uses it). */
const sessionTtlSecondsDefault = 60;
/** mvccpb.Event's type of a put (a delete is 1). */
const eventTypePut = 0;

/** A lease kept alive as clientv3's session keeps it; `expired` settles when it is lost. */
class Session {
  private constructor(
    readonly lease: string,
    private readonly keeper: LeaseKeeper,
  ) {}

  get expired(): Promise<void> {
    return this.keeper.ended;
  }

  static async open(context: CommandContext, ttlSeconds: number): Promise<Session> {
    const connection = context.client();
    const granted = await connection.call('Lease', 'LeaseGrant', { TTL: String(ttlSeconds) }, undefined);
    const lease = String(granted.ID);
    const dialTimeoutMs = context.flags.durationNs('dial-timeout') / 1e6;
    return new Session(lease, new LeaseKeeper(connection, lease, firstAnswerWaitMs(dialTimeoutMs)));
  }

  /** Stops renewing; like etcdctl, the lease is left to expire rather than revoked. */
  close(): void {
    this.keeper.close();
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

/**
 * A call that an abort turns into Go's "context canceled", and any failure into etcdctl's exit 1.
 * An aborted Lock or Campaign first deletes the session's own key (`withdraw`), as clientv3's
 * Mutex and Election do before they return, so the key is gone once the command has exited
 * rather than whenever the server notices the cancelled call.
 */
async function recipeCall(
  context: CommandContext,
  service: 'Lock' | 'Election' | 'KV',
  method: string,
  request: Message,
  signal?: AbortSignal,
  withdraw?: Buffer,
): Promise<Message> {
  try {
    return await context.client().call(service, method, request, undefined, signal);
  } catch (error) {
    if (signal?.aborted === true) {
      if (withdraw !== undefined)
        await context
          .client()
          .call('KV', 'DeleteRange', { key: withdraw }, undefined)
          .catch(() => undefined);
      exitWithError(context.output, ExitCode.error, 'context canceled');
    }
    return exitWithError(context.output, ExitCode.error, rpcErrorText(error));
  }
}

/** The key a session waits under in a lock or election: `<name>/<lease ID in hex>`, as clientv3 names it. */
function sessionKey(name: Buffer, session: Session): Buffer {
  return Buffer.concat([name, Buffer.from(`/${BigInt(session.lease).toString(16)}`)]);
}

async function openSession(context: CommandContext, ttlSeconds: number): Promise<Session> {
  try {
    return await Session.open(context, ttlSeconds);
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
    const name = Buffer.from(args[0] ?? '');
    const request = { name, lease: session.lease };
    const locked = await recipeCall(context, 'Lock', 'Lock', request, controller.signal, sessionKey(name, session));
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

/**
 * clientv3's Election.Observe, which etcdctl prints: the oldest candidate's key (waiting for a
 * first put when there is none), then every change of that key until it is deleted, then again.
 * The first answer of each leader carries only the header and key; the changes after it carry
 * the count and more of the range that found the leader, as clientv3 hands them to etcdctl.
 */
async function observe(context: CommandContext, name: Buffer, signalled: Promise<void>): Promise<void> {
  const connection = context.client();
  const printer = context.printer();
  const prefix = Buffer.concat([name, Buffer.from('/')]);
  const stop = new AbortController();
  void signalled.then(() => stop.abort());
  try {
    // Observing lasts until a signal, as etcdctl's does; each round waits on the server.
    for (;;) {
      const oldest = await connection.call('KV', 'Range', oldestCandidate(prefix), undefined, stop.signal);
      const leader =
        (oldest.kvs as Message[]).length > 0
          ? { header: oldest.header as Message, kv: (oldest.kvs as Message[])[0]! }
          : await firstPut(connection, prefix, String(oldest.header?.revision ?? '0'), stop.signal);
      if (leader === undefined) break;
      printer.get({ header: leader.header, kvs: [leader.kv], more: false, count: '0' });
      const deleted = await followLeader(connection, leader, stop.signal, (header, kv) =>
        printer.get({ ...oldest, header, kvs: [kv] }),
      );
      if (!deleted) break;
    }
  } catch {
    // A failed call or watch ends observing, as a closed channel ends clientv3's.
  }
  if (!stop.signal.aborted) exitWithError(context.output, ExitCode.error, 'elect: observer lost');
}

/** clientv3's WithFirstCreate under the election's prefix: the candidate that campaigned first. */
function oldestCandidate(prefix: Buffer): Message {
  const sortByCreate = { sort_order: 1, sort_target: 1 };
  return { key: prefix, range_end: prefixRangeEnd(prefix), limit: '1', ...sortByCreate };
}

/** The responses of one watch; ends (returns) when the server cancels it. */
async function* watchResponses(
  connection: EtcdConnection,
  create: Message,
  signal: AbortSignal,
): AsyncGenerator<Message, void> {
  const stream = await connection.duplex('Watch', 'Watch');
  const cancel = (): void => stream.cancel();
  signal.addEventListener('abort', cancel, { once: true });
  try {
    // Opening the stream authenticates anew, which can outlast a signal that came meanwhile.
    if (signal.aborted) return;
    stream.write({ create_request: create });
    for await (const response of stream as AsyncIterable<Message>) {
      if (response.canceled === true) return;
      if (response.created !== true) yield response;
    }
  } finally {
    signal.removeEventListener('abort', cancel);
    stream.cancel();
  }
}

/** The first put under the prefix from `revision` on, its header's revision set to the put's. */
async function firstPut(
  connection: EtcdConnection,
  prefix: Buffer,
  revision: string,
  signal: AbortSignal,
): Promise<{ header: Message; kv: Message } | undefined> {
  const create = { key: prefix, range_end: prefixRangeEnd(prefix), start_revision: revision };
  for await (const response of watchResponses(connection, create, signal)) {
    const put = (response.events as Message[]).find((event) => event.type === eventTypePut);
    if (put !== undefined)
      return { header: { ...(response.header as Message), revision: (put.kv as Message).mod_revision }, kv: put.kv };
  }
  return undefined;
}

/** Shows every put of the leader's key after it was found; true once the key is deleted. */
async function followLeader(
  connection: EtcdConnection,
  leader: { header: Message; kv: Message },
  signal: AbortSignal,
  show: (header: Message, kv: Message) => void,
): Promise<boolean> {
  const create = { key: leader.kv.key, start_revision: String(BigInt(leader.header.revision as string) + 1n) };
  for await (const response of watchResponses(connection, create, signal))
    for (const event of response.events as Message[]) {
      if (event.type !== eventTypePut) return true;
      show(response.header as Message, event.kv as Message);
    }
  return false;
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
  const elected = await recipeCall(context, 'Election', 'Campaign', request, signal, sessionKey(name, session));
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
