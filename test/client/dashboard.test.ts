/**
 * /dashboard without a browser: the page and its files on the client URL and on a
 * --listen-metrics-urls URL, and the server-sent feed (GET /dashboard/events) of a real member:
 * one reachable leader with its election in the timeline, and put counts and rates that follow
 * etcdctl's puts. In-process, the feed's timer and timeline hook live only while a dashboard is
 * connected.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { runEtcdctl } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { freePort, loopbackHost } from '../support/ports.js';
import { sutCommand } from '../support/sut.js';
import { DashboardFeed, type FeedView } from '../../actors/client/dashboard.js';
import type { ClusterView } from '../../actors/member/dashboard-view.js';
import type { RoleTransition } from '../../actors/member/role-timeline.js';

/** Events read from a feed at most before a test gives up on the one it waits for. */
const feedEventsMax = 20;

interface FeedEvent {
  event: string;
  data: unknown;
}

/** Reads server-sent events from `url` until `done` holds for one (or feedEventsMax were read). */
async function readFeed(url: string, done: (event: FeedEvent) => boolean): Promise<FeedEvent[]> {
  const aborter = new AbortController();
  const response = await fetch(url, { signal: aborter.signal });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'text/event-stream');
  const seen: FeedEvent[] = [];
  const decoder = new TextDecoder();
  let buffered = '';
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffered.indexOf('\n\n')) >= 0) {
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event === undefined || data === undefined) continue;
        seen.push({ event, data: JSON.parse(data) });
        if (done(seen.at(-1)!) || seen.length >= feedEventsMax) return seen;
      }
    }
  } finally {
    aborter.abort();
  }
  return seen;
}

function lastCluster(events: FeedEvent[]): FeedView {
  const cluster = events.filter((event) => event.event === 'cluster').at(-1);
  assert.ok(cluster !== undefined, `no cluster event among ${events.map((event) => event.event).join(', ')}`);
  return cluster.data as FeedView;
}

const sut = sutCommand();
const skip = sut.command === undefined ? { skip: sut.skipReason } : {};

describe('/dashboard on a member', skip, () => {
  test('the page, its script and its style are served on the client URL and the metrics URL alike', async () => {
    const metricsUrl = `http://${loopbackHost}:${await freePort()}`;
    const member = await Member.start({ command: sut.command!, extraFlags: ['--listen-metrics-urls', metricsUrl] });
    try {
      const files = [
        ['/dashboard', 'text/html; charset=utf-8'],
        ['/dashboard/dashboard.js', 'text/javascript; charset=utf-8'],
        ['/dashboard/dashboard.css', 'text/css; charset=utf-8'],
      ];
      let pageBytes = 0;
      for (const [path, type] of files) {
        const fromClient = await fetch(`${member.clientUrl}${path}`);
        const fromMetrics = await fetch(`${metricsUrl}${path}`);
        assert.equal(fromClient.status, 200, path);
        assert.equal(fromClient.headers.get('content-type'), type, path);
        const body = await fromClient.text();
        assert.equal(await fromMetrics.text(), body, `${path} on the metrics URL`);
        pageBytes += Buffer.byteLength(body);
      }
      console.log(`dashboard page weight: ${pageBytes} bytes (HTML, JS and CSS, uncompressed)`);
      const page = await (await fetch(`${member.clientUrl}/dashboard`)).text();
      assert.match(page, /<script type="module" src="\/dashboard\/dashboard.js"><\/script>/);
      assert.equal((await fetch(`${member.clientUrl}/dashboard`, { method: 'POST' })).status, 405);
      assert.equal((await fetch(`${member.clientUrl}/dashboard/missing.js`)).status, 404);
    } finally {
      await member.destroy();
    }
  });

  test('the feed shows the lone member as leader, its election in the timeline, and its puts as counts and rates', async () => {
    const member = await Member.start({ command: sut.command! });
    try {
      const feedUrl = `${member.clientUrl}/dashboard/events`;
      const first = lastCluster(await readFeed(feedUrl, (event) => event.event === 'cluster'));
      assert.equal(first.members.length, 1);
      const row = first.members[0]!;
      assert.equal(row.reachable, true);
      assert.equal(row.id, first.observer);
      assert.equal(row.view?.role, 'leader');
      assert.equal(row.view?.leader, row.id);
      const elected = row.view?.transitions.find((transition) => transition.to === 'leader');
      assert.ok(elected !== undefined, `no transition to leader in ${JSON.stringify(row.view?.transitions)}`);
      assert.equal(elected.cause, 'VOTE_WON');
      assert.equal(elected.leaderAfter, row.id);
      const putsBefore = row.view!.requests.put;
      for (const key of ['a', 'b', 'c']) assert.equal((await runEtcdctl(member.clientUrl, ['put', key, 'v'])).code, 0);
      // Rates need two views of one connection; the second after the puts shows them.
      const events = await readFeed(feedUrl, (event) => {
        const view = event.data as FeedView;
        return event.event === 'cluster' && view.rates[row.id] !== undefined;
      });
      const later = lastCluster(events);
      assert.equal(later.members[0]!.view!.requests.put, putsBefore + 3);
      assert.ok(later.rates[row.id] !== undefined, 'a second view on one feed carries request rates');
      assert.ok(later.members[0]!.view!.requests.grpc >= 3, 'the gRPC calls started count the puts');
    } finally {
      await member.destroy();
    }
  });

  test('with auth enabled the page and the feed need no token, as /metrics and /health', async () => {
    const member = await Member.start({ command: sut.command! });
    try {
      for (const args of [
        ['user', 'add', 'root:rootpw'],
        ['auth', 'enable'],
      ]) {
        const result = await runEtcdctl(member.clientUrl, args);
        assert.equal(result.code, 0, `etcdctl ${args.join(' ')}: ${result.stderr}`);
      }
      const refused = await runEtcdctl(member.clientUrl, ['get', 'a']);
      assert.match(refused.stderr, /user name is empty/, 'auth is on');
      assert.equal((await fetch(`${member.clientUrl}/dashboard`)).status, 200);
      const view = lastCluster(await readFeed(`${member.clientUrl}/dashboard/events`, (e) => e.event === 'cluster'));
      assert.equal(view.members[0]?.view?.role, 'leader');
    } finally {
      await member.destroy();
    }
  });
});

/** A source whose timeline subscriptions and view requests are counted. */
function countingSource() {
  const counts = { subscribed: 0, views: 0 };
  let listener: ((transition: RoleTransition) => void) | undefined;
  const view: ClusterView = { observer: '1', atMs: 1, members: [] };
  return {
    counts,
    emit: (transition: RoleTransition) => listener?.(transition),
    source: {
      memberId: '1',
      clusterView: async () => {
        counts.views++;
        return { ...view, atMs: Date.now() };
      },
      timeline: {
        subscribe: (added: (transition: RoleTransition) => void) => {
          counts.subscribed++;
          listener = added;
          return () => {
            counts.subscribed--;
            listener = undefined;
          };
        },
      },
    },
  };
}

test('the feed hooks into the timeline and runs its timer only while a dashboard is connected', async () => {
  const { counts, emit, source } = countingSource();
  const feed = new DashboardFeed(source);
  const routes = feed.routes();
  const server = http.createServer((request, response) => routes['/dashboard/']!(request, response));
  await new Promise<void>((resolve) => server.listen(0, loopbackHost, resolve));
  const url = `http://${loopbackHost}:${(server.address() as AddressInfo).port}/dashboard/events`;
  try {
    assert.deepEqual([feed.openFeeds, feed.running, counts.subscribed], [0, false, 0]);
    const transition: RoleTransition = {
      sequence: 1,
      atMs: 1,
      term: 2,
      from: 'candidate' as RoleTransition['from'],
      to: 'leader' as RoleTransition['to'],
      leaderBefore: '0',
      leaderAfter: '1',
      cause: 'VOTE_WON',
    };
    const events = await readFeed(url, (event) => {
      if (event.event === 'cluster') emit(transition);
      return event.event === 'transition';
    });
    assert.deepEqual(events.at(-1)?.data, { member: '1', transition });
    assert.ok(counts.views >= 1);
    // The client hung up; the server notices the closed socket.
    for (let i = 0; i < 500 && feed.openFeeds > 0; i++) await sleep(10);
    assert.deepEqual([feed.openFeeds, feed.running, counts.subscribed], [0, false, 0]);
  } finally {
    feed.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
