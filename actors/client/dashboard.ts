/**
 * The cluster dashboard on the client and metrics URLs: GET /dashboard serves a small static page
 * (actors/client/dashboard/: HTML, JS and CSS as kept in the repo, no build step), and GET
 * /dashboard/events is its feed, as server-sent events:
 *
 *   event: cluster     every dashboardFeedIntervalMs, every member's view with request rates
 *   event: transition  at once, each role transition or leader change of this member
 *
 * The feed's timer and its hook into the member's timeline exist only while a dashboard is
 * connected. Like /metrics and /health, it needs no token when auth is on: it shows no keys or
 * values.
 */
import { readFileSync } from 'node:fs';
import type * as http from 'node:http';
import { join } from 'node:path';
import { dashboardFeedBufferedBytesMax, dashboardFeedIntervalMs, dashboardFeedsMax } from '../../src/lib/limits.js';
import { packageRoot } from '../../src/lib/paths.js';
import { type ClusterView, type MemberView, type RequestCounts, requestRates } from '../member/dashboard-view.js';
import type { RoleTimeline } from '../member/role-timeline.js';

/** What the feed reads from the member. */
export interface DashboardSource {
  /** This member's ID in etcd's hex. */
  memberId: string;
  clusterView(): Promise<ClusterView>;
  timeline: Pick<RoleTimeline, 'subscribe'>;
}

/** A cluster event: the view, each reachable member with its requests per second since the last push. */
export type FeedView = ClusterView & { rates: Record<string, RequestCounts> };

export const dashboardPaths = {
  page: '/dashboard',
  prefix: '/dashboard/',
  events: '/dashboard/events',
} as const;

interface Asset {
  body: Buffer;
  contentType: string;
}

const assetFiles: Record<string, [file: string, contentType: string]> = {
  [dashboardPaths.page]: ['index.html', 'text/html; charset=utf-8'],
  [dashboardPaths.prefix]: ['index.html', 'text/html; charset=utf-8'],
  '/dashboard/dashboard.js': ['dashboard.js', 'text/javascript; charset=utf-8'],
  '/dashboard/dashboard.css': ['dashboard.css', 'text/css; charset=utf-8'],
};

let assets: Map<string, Asset> | undefined;

/** The page's files, read once from the package. */
export function dashboardAssets(): ReadonlyMap<string, Asset> {
  if (assets !== undefined) return assets;
  const dir = join(packageRoot(), 'actors', 'client', 'dashboard');
  assets = new Map(
    Object.entries(assetFiles).map(([path, [file, contentType]]) => [
      path,
      { body: readFileSync(join(dir, file)), contentType },
    ]),
  );
  return assets;
}

function sendPlain(
  response: http.ServerResponse,
  status: number,
  body: string,
  headers: http.OutgoingHttpHeaders = {},
) {
  response.writeHead(status, {
    ...headers,
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    'Content-Length': Buffer.byteLength(body),
  });
  response.end(body);
}

/** One member's dashboard: the page and its feed; one per member, shared by its client and metrics URLs. */
export class DashboardFeed {
  private readonly feeds = new Set<http.ServerResponse>();
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private previous = new Map<string, MemberView>();
  private pushing = false;

  constructor(private readonly source: DashboardSource) {}

  /** The routes to add to a listener: /dashboard and everything under /dashboard/. */
  routes(): Record<string, http.RequestListener> {
    const serve: http.RequestListener = (request, response) => this.serve(request, response);
    return { [dashboardPaths.page]: serve, [dashboardPaths.prefix]: serve };
  }

  /** Open feeds right now (for tests and the bench: none means no timer runs). */
  get openFeeds(): number {
    return this.feeds.size;
  }

  /** True while the feed's timer and timeline hook exist: only while a dashboard is connected. */
  get running(): boolean {
    return this.timer !== undefined || this.unsubscribe !== undefined;
  }

  /** Ends every open feed. */
  close(): void {
    for (const feed of this.feeds) feed.end();
    this.feeds.clear();
    this.stop();
  }

  private serve(request: http.IncomingMessage, response: http.ServerResponse): void {
    if (request.method !== 'GET') return sendPlain(response, 405, 'Method Not Allowed\n', { Allow: 'GET' });
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    if (path === dashboardPaths.events) return this.open(response);
    const asset = dashboardAssets().get(path);
    if (asset === undefined) return sendPlain(response, 404, '404 page not found\n');
    response.writeHead(200, {
      'Content-Type': asset.contentType,
      'Content-Length': asset.body.length,
      'Cache-Control': 'no-cache',
      'X-Content-Type-Options': 'nosniff',
    });
    response.end(asset.body);
  }

  private open(response: http.ServerResponse): void {
    if (this.feeds.size >= dashboardFeedsMax)
      return sendPlain(response, 503, `too many open dashboards (at most ${dashboardFeedsMax})\n`);
    response.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
      'X-Content-Type-Options': 'nosniff',
    });
    response.write(`retry: ${dashboardFeedIntervalMs}\n\n`);
    this.feeds.add(response);
    response.once('close', () => {
      this.feeds.delete(response);
      if (this.feeds.size === 0) this.stop();
    });
    if (this.timer === undefined) this.start();
    void this.push();
  }

  private start(): void {
    this.timer = setInterval(() => void this.push(), dashboardFeedIntervalMs);
    this.unsubscribe = this.source.timeline.subscribe((transition) =>
      this.broadcast('transition', { member: this.source.memberId, transition }),
    );
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.previous = new Map();
  }

  /** Gathers the cluster view and sends it to every open feed; one gathering at a time. */
  private async push(): Promise<void> {
    if (this.pushing) return;
    this.pushing = true;
    try {
      const view = await this.source.clusterView();
      this.broadcast('cluster', this.withRates(view));
    } catch (error) {
      this.broadcast('failure', { message: (error as Error).message });
    } finally {
      this.pushing = false;
    }
  }

  private withRates(view: ClusterView): FeedView {
    const rates: Record<string, RequestCounts> = {};
    for (const row of view.members) {
      if (row.view === undefined) continue;
      const rate = requestRates(this.previous.get(row.id), row.view);
      if (rate !== undefined) rates[row.id] = rate;
      this.previous.set(row.id, row.view);
    }
    return { ...view, rates };
  }

  private broadcast(event: string, data: object): void {
    const text = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const feed of this.feeds) {
      if (feed.writableLength > dashboardFeedBufferedBytesMax) feed.destroy();
      else feed.write(text);
    }
  }
}
