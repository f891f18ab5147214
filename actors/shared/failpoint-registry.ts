/**
 * The failpoints set in this thread, loaded only under the test switch (see failpoints.ts).
 *
 * Every thread that loads it starts from GOFAIL_FAILPOINTS and listens on one BroadcastChannel,
 * over which changes made at runtime reach every thread of the process: the main thread serves
 * GOFAIL_HTTP and broadcasts each PUT and DELETE, and a thread's own copy of the variable is
 * rewritten on each change, so threads it starts later begin with the current set. A thread
 * blocked in a `pause` or `sleep` of a synchronous point reads the channel while it waits.
 * Counts (`N*`) are kept per thread. A `panic` in a worker thread asks the main thread to end the
 * process with exit code 2, as a Go panic does.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { writeSync } from 'node:fs';
import { BroadcastChannel, isMainThread, receiveMessageOnPort, threadId, type MessagePort } from 'node:worker_threads';
import { getSystemErrorMap } from 'node:util';
import { failpointNames, isFailpointName, type FailpointName } from './failpoint-names.js';
import {
  FailpointTermError,
  parseFailpointList,
  parseFailpointTerms,
  type FailpointAction,
  type FailpointTerm,
} from './failpoint-terms.js';

/** The channel every thread's registry listens on. */
const channelName = 'tsetcd-gofail';
/** How often a thread blocked in a pause looks for the change that releases it. */
const pausePollMs = 10;
/** The longest a pause holds a thread before it lets go by itself (a test that forgot it). */
const pauseMsMax = 600_000;
/** How long a worker that panicked waits for the main thread to end the process before it kills it. */
const panicExitWaitMs = 2_000;
/** Go's exit code after a panic. */
const panicExitCode = 2;

type ChannelMessage =
  | { type: 'set'; name: FailpointName; terms: string }
  | { type: 'clear'; name: FailpointName }
  | { type: 'panic'; name: FailpointName };

interface Armed {
  text: string;
  terms: FailpointTerm[];
  /** The term in use, and how many times it has run. */
  position: number;
  runs: number;
}

const armed = new Map<FailpointName, Armed>();
/** Bumped on every change, so a pause sees that its point was set again or cleared. */
let generation = 0;
const waiters = new Set<() => void>();
const sleeper = new Int32Array(new SharedArrayBuffer(4));

const channel = new BroadcastChannel(channelName);
channel.unref();
channel.onmessage = (event: unknown) => onChannelMessage((event as { data: ChannelMessage }).data);

for (const [name, terms] of parseFailpointList(process.env.GOFAIL_FAILPOINTS ?? '')) setLocally(name, terms);
writeLine({
  level: 'warn',
  msg: 'failpoints enabled',
  thread: threadId,
  failpoints: process.env.GOFAIL_FAILPOINTS ?? '',
});
if (isMainThread && process.env.GOFAIL_HTTP !== undefined) serveHttp(process.env.GOFAIL_HTTP);

/** The terms set on `name`, or undefined. */
export function termsOf(name: FailpointName): string | undefined {
  return armed.get(name)?.text;
}

/** Sets `name` to `terms` here and in every thread; throws FailpointTermError on a bad name or terms. */
export function setFailpoint(name: string, terms: string): void {
  setLocally(name, terms);
  channel.postMessage({ type: 'set', name: name as FailpointName, terms } satisfies ChannelMessage);
}

/** Clears `name` here and in every thread. */
export function clearFailpoint(name: FailpointName): void {
  clearLocally(name);
  channel.postMessage({ type: 'clear', name } satisfies ChannelMessage);
}

/** Runs `name`'s action where blocking the thread is acceptable. */
export function hitSync(name: FailpointName): void {
  readChannel();
  const action = nextAction(name);
  if (action === undefined) return;
  switch (action.kind) {
    case 'sleep':
      return void Atomics.wait(sleeper, 0, 0, action.ms);
    case 'pause':
      return pauseSync(name);
    default:
      return runImmediate(name, action);
  }
}

/** Runs `name`'s action, waiting (not blocking) for a sleep or a pause. */
export async function hitAsync(name: FailpointName): Promise<void> {
  readChannel();
  const action = nextAction(name);
  if (action === undefined) return;
  switch (action.kind) {
    case 'sleep':
      return new Promise((resolve) => setTimeout(resolve, action.ms));
    case 'pause':
      return pauseAsync();
    default:
      return runImmediate(name, action);
  }
}

/** The action to run now for `name`, advancing its counts; undefined when it is off or skipped. */
function nextAction(name: FailpointName): FailpointAction | undefined {
  const point = armed.get(name);
  if (point === undefined) return undefined;
  let term = point.terms[point.position];
  while (term !== undefined && point.runs >= term.count) {
    point.position++;
    point.runs = 0;
    term = point.terms[point.position];
  }
  if (term === undefined || term.action.kind === 'off') return undefined;
  if (term.percent < 100 && Math.random() * 100 >= term.percent) return undefined;
  point.runs++;
  return term.action;
}

/** panic, return and print: the same in both kinds of caller. */
function runImmediate(name: FailpointName, action: FailpointAction): void {
  if (action.kind === 'panic') return panic(name);
  if (action.kind === 'print') return writeLine({ level: 'info', msg: 'failpoint hit', failpoint: name });
  if (action.kind === 'return') throw returnError(name, action.value);
}

/** The error a `return(value)` throws: shaped like Node's fs errors when value is an errno name. */
function returnError(name: FailpointName, value: string): Error {
  const errno = [...getSystemErrorMap()].find(([, [code]]) => code === value);
  if (errno === undefined) return new Error(value === '' ? `failpoint ${name}` : value);
  const [number, [code, description]] = errno;
  return Object.assign(new Error(`${code}: ${description}, failpoint ${name}`), { code, errno: number });
}

function panic(name: FailpointName): void {
  writeLine({ level: 'panic', msg: 'failpoint panic', failpoint: name });
  writeSync(2, `panic: failpoint panic: ${name}\n`);
  if (isMainThread) process.exit(panicExitCode);
  channel.postMessage({ type: 'panic', name } satisfies ChannelMessage);
  // Nothing more may happen on this thread; the main thread ends the process meanwhile.
  Atomics.wait(sleeper, 0, 0, panicExitWaitMs);
  process.kill(process.pid, 'SIGKILL');
}

function pauseSync(name: FailpointName): void {
  const pausedAt = generation;
  for (let waitedMs = 0; generation === pausedAt && waitedMs < pauseMsMax; waitedMs += pausePollMs) {
    Atomics.wait(sleeper, 0, 0, pausePollMs);
    readChannel();
  }
  if (generation === pausedAt)
    writeLine({ level: 'warn', msg: 'failpoint pause released by its limit', failpoint: name });
}

/**
 * Takes every change already posted, so a point hit after a PUT was answered sees it even while
 * this thread's event loop is busy (a WAL thread syncing round after round). Node's
 * receiveMessageOnPort takes a BroadcastChannel too, which its types do not say.
 */
function readChannel(): void {
  const port = channel as unknown as MessagePort;
  for (let next = receiveMessageOnPort(port); next !== undefined; next = receiveMessageOnPort(port))
    onChannelMessage(next.message as ChannelMessage);
}

function pauseAsync(): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(release, pauseMsMax);
    function release(): void {
      clearTimeout(timer);
      waiters.delete(release);
      resolve();
    }
    waiters.add(release);
  });
}

function onChannelMessage(message: ChannelMessage): void {
  switch (message.type) {
    case 'set':
      return setLocally(message.name, message.terms);
    case 'clear':
      return clearLocally(message.name);
    case 'panic':
      if (isMainThread) process.exit(panicExitCode);
      return;
  }
}

function setLocally(name: string, text: string): void {
  if (!isFailpointName(name)) throw new FailpointTermError(text, `failpoint does not exist: ${name}`);
  armed.set(name, { text, terms: parseFailpointTerms(text), position: 0, runs: 0 });
  changed();
}

function clearLocally(name: FailpointName): void {
  armed.delete(name);
  changed();
}

function changed(): void {
  generation++;
  process.env.GOFAIL_FAILPOINTS = [...armed].map(([name, point]) => `${name}=${point.text}`).join(';');
  for (const release of [...waiters]) release();
}

/** gofail's listing: one `name=terms` line per failpoint, unset ones with nothing after the `=`. */
function listText(): string {
  return failpointNames.map((name) => `${name}=${armed.get(name)?.text ?? ''}\n`).join('');
}

function writeLine(fields: Record<string, unknown>): void {
  writeSync(2, `${JSON.stringify({ level: fields.level, ts: new Date().toISOString(), ...fields })}\n`);
}

/** gofail's HTTP endpoint: GET / lists, GET /name reads, PUT /name sets (terms in the body), DELETE /name clears. */
function serveHttp(address: string): void {
  const colon = address.lastIndexOf(':');
  const host = colon <= 0 ? '127.0.0.1' : address.slice(0, colon);
  const port = Number(address.slice(colon + 1));
  const server = createServer((request, response) => void answer(request, response));
  server.on('error', (error) => {
    writeLine({ level: 'fatal', msg: 'failed to serve failpoints', address, error: error.message });
    process.exit(1);
  });
  server.listen(port, host);
  server.unref();
}

async function answer(request: IncomingMessage, response: ServerResponse): Promise<void> {
  const name = decodeURIComponent((request.url ?? '/').slice(1).split('?')[0] ?? '');
  let body = '';
  for await (const chunk of request) body += String(chunk);
  const reply = (status: number, text = '') => {
    response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
    response.end(text);
  };
  if (name === '') return request.method === 'GET' ? reply(200, listText()) : reply(405, 'method not allowed\n');
  if (!isFailpointName(name)) return reply(404, 'failpoint: failpoint does not exist\n');
  switch (request.method) {
    case 'GET': {
      const terms = termsOf(name);
      return terms === undefined ? reply(404, 'failpoint: failpoint is disabled\n') : reply(200, terms);
    }
    case 'PUT':
      try {
        setFailpoint(name, body.trim());
        return reply(204);
      } catch (error) {
        return reply(400, `${(error as Error).message}\n`);
      }
    case 'DELETE':
      clearFailpoint(name);
      return reply(204);
    default:
      return reply(405, 'method not allowed\n');
  }
}
