/**
 * `tsetcd inspect [--listen ws://HOST:PORT]`: a local relay for inspection streams. Members
 * (--inspect-url) and viewers (Stately's inspector, or any WebSocket client) connect to it; every
 * message from one is sent to all others, as @statelyai/inspect's server does, and the latest
 * messages are replayed to whoever connects late. A browser opening http://HOST:PORT gets a page
 * that shows Stately's inspector fed by the relay. Role and lifecycle transitions are printed as
 * they happen: member, term, from -> to, and the event that caused the change.
 */
import { createServer } from 'node:http';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { inspectRelayReplayMax, inspectRelaySessionsMax, inspectRelayViewerBytesMax } from '../../src/lib/limits.js';
import { createLogger } from '../shared/logger.js';
import { memberOfSession } from './member-inspect.js';

export const relayListenDefault = 'ws://127.0.0.1:8080';

export const relayUsage =
  'Usage:\n\n  tsetcd inspect [--listen ws://HOST:PORT]\n' +
  `    Relay members' inspection streams (--inspect-url) to Stately's inspector and print role changes (default ${relayListenDefault}).\n`;

interface SessionSeen {
  name: string | undefined;
  value: string | undefined;
}

/** What the relay reads of an inspection message. */
export interface Inspected {
  type?: unknown;
  sessionId?: unknown;
  name?: unknown;
  event?: { type?: unknown };
  snapshot?: { value?: unknown; context?: { term?: unknown } };
}

/** Turns a stream of inspection messages into one line per state change of a role or lifecycle machine. */
export class TransitionPrinter {
  private readonly sessions = new Map<string, SessionSeen>();

  /** The line for `event` (one parsed inspection message), or undefined when it changes no state. */
  lineFor(event: Inspected): string | undefined {
    if (typeof event.sessionId !== 'string') return undefined;
    let seen = this.sessions.get(event.sessionId);
    if (seen === undefined) {
      seen = { name: undefined, value: undefined };
      this.sessions.set(event.sessionId, seen);
      // Members that restart start new sessions; the oldest are forgotten.
      if (this.sessions.size > inspectRelaySessionsMax)
        this.sessions.delete(this.sessions.keys().next().value as string);
    }
    if (event.type === '@xstate.actor' && typeof event.name === 'string') seen.name = event.name;
    if (event.type !== '@xstate.snapshot' || event.snapshot === undefined) return undefined;
    const value = JSON.stringify(event.snapshot.value);
    const from = seen.value;
    if (value === from) return undefined;
    seen.value = value;
    const member = memberOfSession(event.sessionId);
    const term = event.snapshot.context?.term;
    const machine = typeof term === 'number' ? `term ${term}` : (seen.name ?? 'machine');
    const cause = typeof event.event?.type === 'string' ? event.event.type : '';
    const change = from === undefined ? unquote(value) : `${unquote(from)} -> ${unquote(value)}`;
    return `${member} ${machine}: ${change} (${cause})`;
  }
}

/** Parses one inspection message; undefined for anything that is not a JSON object. */
export function parseInspected(message: string): Inspected | undefined {
  try {
    const parsed: unknown = JSON.parse(message);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Inspected) : undefined;
  } catch {
    return undefined;
  }
}

function unquote(value: string): string {
  return value.startsWith('"') ? (JSON.parse(value) as string) : value;
}

/** A page that shows Stately's inspector and feeds it what the relay sends (see the module comment). */
function bridgePage(): string {
  return `<!DOCTYPE html>
<html><head><title>tsetcd inspect</title>
<style>html, body, iframe { margin: 0; width: 100%; height: 100%; border: 0; }</style></head>
<body><iframe id="inspector" src="https://stately.ai/inspect"></iframe>
<script>
const frame = document.getElementById('inspector');
const waiting = [];
let ready = false;
// The inspector says it is ready with a @statelyai.connected message; until then events wait.
window.addEventListener('message', (message) => {
  if (message.data && message.data.type === '@statelyai.connected') {
    ready = true;
    for (const event of waiting.splice(0)) frame.contentWindow.postMessage(event, '*');
  }
});
const socket = new WebSocket('ws://' + location.host);
socket.onmessage = (message) => {
  const event = JSON.parse(message.data);
  if (ready) frame.contentWindow.postMessage(event, '*');
  else waiting.push(event);
};
</script></body></html>
`;
}

function parseListen(argv: string[]): URL {
  let listen = relayListenDefault;
  for (let position = 0; position < argv.length; position++) {
    const argument = argv[position] as string;
    if (argument === '--listen' || argument === '-listen') listen = argv[++position] ?? '';
    else if (argument.startsWith('--listen=') || argument.startsWith('-listen='))
      listen = argument.split(/=(.*)/s)[1] ?? '';
    else {
      process.stderr.write(`unknown flag: ${argument}\n${relayUsage}`);
      process.exit(2);
    }
  }
  const url = URL.canParse(listen) ? new URL(listen) : undefined;
  if (url === undefined || url.protocol !== 'ws:' || url.port === '') {
    process.stderr.write(`invalid value "${listen}" for flag -listen: expected ws://HOST:PORT\n${relayUsage}`);
    process.exit(2);
  }
  return url;
}

/** Entry point of `tsetcd inspect`: relays until SIGINT/SIGTERM. */
export async function runInspectRelay(argv: string[]): Promise<void> {
  const url = parseListen(argv);
  const logger = createLogger('info');
  const printer = new TransitionPrinter();
  const replay: string[] = [];
  // Each session's registration (its definition) is replayed too, however old, so a late viewer can draw it.
  const registrations = new Map<string, string>();
  const http = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(bridgePage());
  });
  const server = new WebSocketServer({ server: http });
  server.on('connection', (socket) => {
    socket.on('error', () => undefined);
    for (const message of [...registrations.values(), ...replay]) socket.send(message);
    socket.on('message', (data: RawData) => {
      const message = data.toString();
      const event = parseInspected(message);
      if (event?.type === '@xstate.actor' && typeof event.sessionId === 'string') {
        registrations.delete(event.sessionId);
        registrations.set(event.sessionId, message);
        if (registrations.size > inspectRelaySessionsMax)
          registrations.delete(registrations.keys().next().value as string);
      } else {
        replay.push(message);
        if (replay.length > inspectRelayReplayMax) replay.shift();
      }
      for (const other of server.clients) {
        // A viewer that does not keep up misses messages rather than growing the relay without bound.
        if (other === socket || other.readyState !== WebSocket.OPEN) continue;
        if (other.bufferedAmount < inspectRelayViewerBytesMax) other.send(message);
      }
      const line = event === undefined ? undefined : printer.lineFor(event);
      if (line !== undefined) process.stdout.write(`${line}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(Number(url.port), url.hostname.replace(/^\[|\]$/g, ''), resolve);
  });
  logger.info(
    { 'listen-url': url.href.replace(/\/$/, ''), 'inspector-page': `http://${url.host}` },
    'relaying inspection streams',
  );
  const stop = () => {
    for (const client of server.clients) client.terminate();
    server.close();
    http.close(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
