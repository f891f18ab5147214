/**
 * `etcdctl watch`: one Watch stream carrying every watch of the command (one, or one per
 * `watch ...` line in interactive mode), clientv3's delivery rules (no created notice, progress
 * notices to every watch, a compaction cancels with its error) and etcdctl's display and exec mode.
 */
import type { ClientDuplexStream } from '@grpc/grpc-js';
import { errors, grpcCodeNames, watchRefusalReason } from '../src/api/errors.js';
import type { Message } from './client.js';
import { grpcStatus } from './grpc-unary.js';
import type { CommandContext } from './context.js';
import { runToEnd } from './exec.js';
import { goQuote } from './go-format.js';
import { CtlExit, ExitCode, exitWithError } from './output.js';
import { enumName, type Printer } from './printers.js';
import { argify } from './txn-command.js';
import {
  parseCommandLineWatchArgs,
  parseInteractiveWatchArgs,
  watchSpan,
  type WatchArgs,
  type WatchEnvironment,
} from './watch-args.js';

/** clientv3 marks progress answers to RequestProgress with this watch ID; they go to every watch. */
const broadcastWatchId = '-1';
/** Refusals of a create after which clientv3 opens the Watch stream again with a fresh token. */
const tokenRefreshReasons: ReadonlySet<string> = new Set(
  [errors.invalidAuthToken(), errors.authOldRevision()].map((error) => watchRefusalReason(error)),
);
/** How clientv3 words a call that failed because no member could be reached. */
const unavailablePrefix = `rpc error: code = ${grpcCodeNames[grpcStatus.unavailable]} desc = `;
/** Pause before a broken Watch stream is opened again, as clientv3 retries it. */
const streamRetryMs = 500;
/** Interactive lines read before the input is called runaway. */
const interactiveLinesMax = 10_000_000;

/** `etcdctl watch`. */
export async function runWatch(context: CommandContext): Promise<void> {
  const env: WatchEnvironment = {
    key: context.env.ETCDCTL_WATCH_KEY ?? '',
    rangeEnd: context.env.ETCDCTL_WATCH_RANGE_END ?? '',
  };
  if (env.key === '' && env.rangeEnd !== '')
    exitWithError(
      context.output,
      ExitCode.badArgs,
      `ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END=${goQuote(Buffer.from(env.rangeEnd))}`,
    );
  if (context.flags.bool('interactive')) return runInteractive(context, env);
  const options = {
    prefix: context.flags.bool('prefix'),
    rev: context.flags.int64('rev'),
    prevKv: context.flags.bool('prev-kv'),
  };
  const parsed = parseCommandLineWatchArgs(context.rawArgs, context.args, env, options);
  if (!parsed.ok) exitWithError(context.output, ExitCode.badArgs, parsed.error);
  context.client();
  const session = new WatchSession(context);
  const started = session.watch(parsed);
  if (typeof started === 'string') exitWithError(context.output, ExitCode.badArgs, started);
  try {
    await Promise.race([started.ended, session.failure]);
  } finally {
    session.close();
  }
  exitWithError(context.output, ExitCode.interrupted, 'watch is canceled by the server');
}

/** `etcdctl watch -i`: `watch ...` and `progress` lines from stdin until it ends. */
async function runInteractive(context: CommandContext, env: WatchEnvironment): Promise<void> {
  const { output } = context;
  context.client();
  const session = new WatchSession(context);
  try {
    for (let count = 0; count < interactiveLinesMax; count++) {
      const read = await Promise.race([context.stdin.readLine(), session.failure]);
      if (read === undefined || !read.endsWith('\n'))
        exitWithError(output, ExitCode.invalidInput, 'Error reading watch request line: EOF');
      const line = read.slice(0, -1);
      const words = argify(output, line);
      if (words.length < 1) {
        output.err(`Invalid command: ${line} (watch and progress supported)\n`);
        continue;
      }
      if (words[0] === 'watch') {
        if (words.length < 2 && env.key === '') {
          output.err(`Invalid command ${line} (command type or key is not provided)\n`);
          continue;
        }
        const parsed = parseInteractiveWatchArgs(words, env);
        if (!parsed.ok) exitWithError(output, ExitCode.badArgs, parsed.error);
        const started = session.watch(parsed);
        // clientv3's Watch returns once the server has created the watch, so lines stay in order.
        if (typeof started === 'string') output.err(`Invalid command ${line} (${started})\n`);
        else await Promise.race([started.created, session.failure]);
      } else if (words[0] === 'progress') {
        await session.requestProgress();
      } else {
        output.err(`Invalid command ${line} (only support watch)\n`);
      }
    }
  } finally {
    session.close();
  }
}

/** One watch of the session and what clientv3 keeps for it. */
interface Watch {
  readonly create: Message;
  readonly execArgs: readonly string[];
  /** Where the watch resumes when the stream is opened again. */
  nextRevision: bigint;
  id: string | undefined;
  /** Responses are shown one after the other, exec commands included. */
  shown: Promise<void>;
  created: () => void;
  end: () => void;
  ended: boolean;
}

/** A started watch: `created` settles once the server has it, `ended` when the server ends it. */
interface StartedWatch {
  readonly created: Promise<void>;
  readonly ended: Promise<void>;
}

/** The watches of one command on one Watch stream, created in order like clientv3's. */
class WatchSession {
  /** The stream new watches are created on. */
  private stream: ClientDuplexStream<Message, Message> | undefined;
  /** Every stream opened, the current one last: earlier ones may still deliver (see renewStream). */
  private readonly streams: Array<ClientDuplexStream<Message, Message>> = [];
  /** Watch IDs the current stream was asked to cancel. */
  private readonly cancelSent = new Set<string>();
  private opening: Promise<ClientDuplexStream<Message, Message>> | undefined;
  private readonly watches: Watch[] = [];
  /** Watches sent a create request that has not been answered yet, oldest first. */
  private awaitingCreated: Watch[] = [];
  private readonly printer: Printer;
  private closed = false;
  private fail: (error: unknown) => void = () => undefined;
  /** Rejects when showing a response ends the command (an unsupported format, a failed exec command). */
  readonly failure = new Promise<never>((_resolve, reject) => (this.fail = reject));

  constructor(private readonly context: CommandContext) {
    this.printer = context.printer();
    this.failure.catch(() => undefined);
  }

  /** Starts a watch, or returns etcdctl's refusal of the words. */
  watch(args: Extract<WatchArgs, { ok: true }>): StartedWatch | string {
    const span = watchSpan(args.watchArgs, args.options);
    if (!span.ok) return span.error;
    const create = {
      key: span.key,
      range_end: span.rangeEnd,
      start_revision: args.options.rev.toString(),
      prev_kv: args.options.prevKv,
    };
    let created = (): void => undefined;
    let end = (): void => undefined;
    const started: StartedWatch = {
      created: new Promise<void>((resolve) => (created = resolve)),
      ended: new Promise<void>((resolve) => (end = resolve)),
    };
    const watch: Watch = {
      create,
      execArgs: args.execArgs,
      nextRevision: args.options.rev,
      id: undefined,
      shown: Promise.resolve(),
      ended: false,
      created,
      end: () => {
        watch.ended = true;
        created();
        end();
      },
    };
    this.watches.push(watch);
    void this.send(watch);
    return started;
  }

  /** clientv3's RequestProgress: asks the server for a progress notice on every watch. */
  async requestProgress(): Promise<void> {
    (await this.open()).write({ progress_request: {} });
  }

  close(): void {
    this.closed = true;
    for (const stream of this.streams) stream.cancel();
  }

  private async send(watch: Watch): Promise<void> {
    let stream: ClientDuplexStream<Message, Message>;
    try {
      stream = await this.open();
    } catch (error) {
      // clientv3 tries again while the cluster is unavailable (the connection its authentication
      // went over was lost); any other failure to open a stream ends the command with that error.
      if (!(error instanceof Error && error.message.startsWith(unavailablePrefix))) return this.fail(error);
      this.opening = undefined;
      setTimeout(() => {
        if (!this.closed) void this.send(watch);
      }, streamRetryMs);
      return;
    }
    this.awaitingCreated.push(watch);
    stream.write({ create_request: { ...watch.create, start_revision: watch.nextRevision.toString() } });
  }

  private open(): Promise<ClientDuplexStream<Message, Message>> {
    this.opening ??= this.context
      .client()
      .duplex('Watch', 'Watch', true)
      .then((stream) => {
        this.stream = stream;
        this.streams.push(stream);
        this.cancelSent.clear();
        stream.on('data', (response: Message) => this.receive(response));
        stream.on('error', () => this.reopen(stream));
        stream.on('end', () => this.reopen(stream));
        if (this.closed) stream.cancel();
        return stream;
      });
    return this.opening;
  }

  /**
   * A create refused for an expired or outdated token: clientv3 opens a new stream (with a fresh
   * token) and creates there, first the refused watch and those still waiting, then every live
   * one again from where it got to. It leaves the old stream open, so what that stream still
   * delivers goes to whichever watch now has the same ID: etcdctl then shows such events twice.
   */
  private renewStream(refused: Watch): void {
    const live = this.watches.filter((watch) => watch.id !== undefined && !watch.ended);
    const resuming = [refused, ...this.awaitingCreated, ...live];
    for (const watch of resuming) watch.id = undefined;
    this.stream = undefined;
    this.opening = undefined;
    this.awaitingCreated = [];
    for (const watch of resuming) void this.send(watch);
  }

  /** A broken stream is opened again and every live watch resumes where it left off. */
  private reopen(broken: ClientDuplexStream<Message, Message>): void {
    if (this.closed || this.stream !== broken) return;
    this.stream = undefined;
    this.opening = undefined;
    this.awaitingCreated = [];
    setTimeout(() => {
      if (this.closed) return;
      for (const watch of this.watches) if (!watch.ended) void this.send(watch);
    }, streamRetryMs);
  }

  private receive(response: Message): void {
    if (response.created === true) {
      const watch = this.awaitingCreated.shift();
      if (watch === undefined) return;
      if (tokenRefreshReasons.has(String(response.cancel_reason ?? ''))) return this.renewStream(watch);
      watch.id = String(response.watch_id);
      // A watch from "now" resumes at the revision it was created at, as clientv3's does.
      if (watch.nextRevision === 0n) watch.nextRevision = BigInt(response.header?.revision ?? 0);
      watch.created();
      // A refused create closes the watch with the reason as its error and an empty response.
      if (response.canceled === true && String(response.cancel_reason) !== '')
        this.show(watch, {
          header: null,
          events: null,
          compact_revision: '0',
          canceled: true,
          created: false,
          closeError: response.cancel_reason,
        });
      return;
    }
    if (String(response.watch_id) === broadcastWatchId) {
      for (const watch of this.watches) if (!watch.ended) this.show(watch, response);
      return;
    }
    const id = String(response.watch_id);
    const watch = this.watches.find((candidate) => candidate.id === id && !candidate.ended);
    if (watch === undefined) return this.cancelUnknown(id, response);
    // clientv3 closes a watch the server cancelled without a compaction, showing nothing.
    if (response.canceled === true && String(response.compact_revision) === '0') return watch.end();
    this.show(watch, response);
  }

  /** Events for a watch ID none of the watches has: clientv3 asks the current stream, once, to cancel that ID. */
  private cancelUnknown(id: string, response: Message): void {
    if (response.canceled === true || this.stream === undefined || this.cancelSent.has(id)) return;
    this.cancelSent.add(id);
    this.stream.write({ cancel_request: { watch_id: id } });
  }

  private show(watch: Watch, response: Message): void {
    const events = (response.events ?? []) as Message[];
    const last = events[events.length - 1];
    if (last !== undefined) watch.nextRevision = BigInt(last.kv.mod_revision as string) + 1n;
    else if (response.created !== true) watch.nextRevision = BigInt(response.header?.revision ?? 0);
    if (response.canceled === true) watch.ended = true;
    watch.shown = watch.shown.then(() => this.display(watch, response)).catch((error: unknown) => this.fail(error));
  }

  /** etcdctl's printWatchCh for one response. */
  private async display(watch: Watch, response: Message): Promise<void> {
    const { output } = this.context;
    const events = (response.events ?? []) as Message[];
    if (response.canceled === true) output.err(`watch was canceled (${cancelText(response)})\n`);
    const progress =
      events.length === 0 &&
      response.canceled !== true &&
      response.created !== true &&
      String(response.compact_revision) === '0' &&
      String(response.header?.revision ?? '0') !== '0';
    if (progress) output.out(`progress notify: ${response.header.revision}\n`);
    this.printer.watch(response);
    for (const event of watch.execArgs.length > 0 ? events : []) await this.exec(watch.execArgs, response, event);
    if (response.canceled === true) watch.end();
  }

  /** Runs the exec command for one event with etcdctl's ETCD_WATCH_* variables; a failure ends etcdctl. */
  private async exec(execArgs: readonly string[], response: Message, event: Message): Promise<void> {
    const env = {
      ...this.context.env,
      ETCD_WATCH_REVISION: String(response.header?.revision ?? 0),
      ETCD_WATCH_EVENT_TYPE: `"${enumName('mvccpb.Event.EventType', event.type as number)}"`,
      ETCD_WATCH_KEY: goQuote(event.kv.key as Buffer),
      ETCD_WATCH_VALUE: goQuote(event.kv.value as Buffer),
    };
    const failure = await runToEnd(execArgs, env);
    if (failure === undefined) return;
    const quoted = `[${execArgs.map((arg) => goQuote(Buffer.from(arg))).join(' ')}]`;
    this.context.output.err(`command ${quoted} error (${failure})\n`);
    throw new CtlExit(ExitCode.error);
  }
}

/** clientv3's WatchResponse.Err() text for a cancelled watch. */
function cancelText(response: Message): string {
  if (typeof response.closeError === 'string') return response.closeError;
  if (String(response.compact_revision) !== '0') return errors.compacted().message;
  const reason = String(response.cancel_reason ?? '');
  if (reason === '') return errors.futureRev().message;
  return reason.startsWith('etcdserver: ') ? reason : `rpc error: code = FailedPrecondition desc = ${reason}`;
}
