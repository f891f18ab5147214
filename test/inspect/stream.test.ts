/**
 * A member's inspection stream never holds the member up: with no inspector listening, events
 * beyond the bounded queue are dropped and counted; once one listens, the stream connects on its
 * own and sends what it kept; each connection and each loss of it is logged once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { WebSocketServer } from 'ws';
import { InspectionStream } from '../../actors/inspect/stream.js';
import type { StatelyInspectionEvent } from '../../actors/inspect/member-inspect.js';
import { inspectQueueEventsMax } from '../../src/lib/limits.js';
import { pollUntil } from '../support/cluster.js';
import { freePort, loopbackHost } from '../support/ports.js';

/** Bound on the stream's redial (its backoff is at most a few seconds) and on delivery. */
const connectWaitMs = 20_000;

function event(n: number): StatelyInspectionEvent {
  return {
    type: '@xstate.event',
    sessionId: 'infra1/x:0',
    event: { type: 'TICK', n },
    sourceId: undefined,
    rootId: 'anonymous',
    createdAt: '0',
    id: String(n),
    _version: 'test',
  };
}

/** A logger whose zap-shaped lines land in `lines`. */
function capturingLogger(lines: Record<string, unknown>[]) {
  return pino(
    { messageKey: 'msg' },
    { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
}

test('with no inspector the queue is bounded and the rest counted; a late inspector gets what was kept', async () => {
  const port = await freePort();
  const logs: Record<string, unknown>[] = [];
  const stream = new InspectionStream(`ws://${loopbackHost}:${port}`, capturingLogger(logs));
  stream.start();
  const extra = 25;
  for (let n = 0; n < inspectQueueEventsMax + extra; n += 1) stream.send(event(n));
  assert.equal(stream.dropped, extra);
  const received: number[] = [];
  const server = new WebSocketServer({ host: loopbackHost, port });
  server.on('connection', (socket) =>
    socket.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as { event: { n: number } };
      received.push(message.event.n);
    }),
  );
  try {
    await pollUntil('the kept events delivered', connectWaitMs, async () =>
      received.length === inspectQueueEventsMax ? '' : `${received.length} received`,
    );
    assert.deepEqual(
      received,
      Array.from({ length: inspectQueueEventsMax }, (_, n) => n),
    );
    const connected = logs.filter((line) => line.msg === 'connected to inspector');
    assert.equal(connected.length, 1);
    assert.equal(connected[0]?.['dropped-events'], extra);
    // The inspector goes away: the loss is logged once, however many redials fail after it.
    for (const client of server.clients) client.terminate();
    await new Promise((resolve) => server.close(resolve));
    await pollUntil('the loss logged', connectWaitMs, async () =>
      logs.some((line) => line.msg === 'lost connection to inspector') ? '' : 'not yet',
    );
    stream.send(event(-1));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.equal(logs.filter((line) => line.msg === 'lost connection to inspector').length, 1);
    assert.equal(logs.filter((line) => line.level === 40).length, 1);
  } finally {
    stream.stop();
    server.close();
  }
});
