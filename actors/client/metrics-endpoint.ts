/**
 * /metrics, as etcd serves it on the client URLs and on --listen-metrics-urls (where /health is
 * served too and nothing else): the member's registry in Prometheus' text format.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type * as net from 'node:net';
import type * as tls from 'node:tls';
import { metricsContentType, type MemberMetrics } from '../member/metrics.js';
import { findRoute, serveHealth, type HttpHandlers } from './listener.js';

/** Answers /metrics with the member's metrics; like etcd's handler, it takes any method. */
export function metricsRoute(metrics: MemberMetrics): http.RequestListener {
  return (_request, response) => {
    metrics.text().then(
      (body) => {
        response.writeHead(200, { 'Content-Type': metricsContentType, 'Content-Length': Buffer.byteLength(body) });
        response.end(body);
      },
      (error: Error) => {
        const body = `An error has occurred while serving metrics:\n\n${error.message}\n`;
        response.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        response.end(body);
      },
    );
  };
}

export interface MetricsListenerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  metrics: MemberMetrics;
  health: HttpHandlers['health'];
  /** Further routes (the dashboard), as ClientListenerOptions' http.routes. */
  routes?: Record<string, http.RequestListener>;
  /** Serve https with the client TLS material, as etcd does for an https metrics URL. */
  tls?: tls.TlsOptions;
}

export interface MetricsListener {
  port: number;
  close(): Promise<void>;
}

/** Listens on one --listen-metrics-urls address: /metrics, /health and the further routes, 404 for the rest. */
export async function listenMetrics(options: MetricsListenerOptions): Promise<MetricsListener> {
  const serveMetrics = metricsRoute(options.metrics);
  const handlers: HttpHandlers = { health: options.health };
  const listener: http.RequestListener = (request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    if (path === '/metrics') return serveMetrics(request, response);
    if (path === '/health') return void serveHealth(handlers, request, response);
    const route = findRoute(options.routes ?? {}, path);
    if (route !== undefined) return void route(request, response);
    const body = '404 page not found\n';
    response.writeHead(404, {
      'Content-Type': 'text/plain; charset=utf-8',
      'X-Content-Type-Options': 'nosniff',
      'Content-Length': Buffer.byteLength(body),
    });
    response.end(body);
  };
  const server = options.tls === undefined ? http.createServer(listener) : https.createServer(options.tls, listener);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
