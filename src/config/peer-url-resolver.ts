/**
 * Host names in peer URLs resolved as etcd resolves them when it compares
 * --initial-advertise-peer-urls with --initial-cluster: "localhost", IP addresses and unix sockets
 * stay as written; any other name is looked up, again every second until a deadline shared by the
 * whole comparison, with etcd's log lines for each attempt and etcd's error texts at the end.
 */
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { isIP, isIPv6 } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError } from './config-error.js';
import type { PeerUrlResolver } from './initial-cluster.js';
import { goQuoteString } from '../lib/go-quote.js';

/** etcd gives the whole comparison of advertised and initial-cluster peer URLs this long. */
export const peerUrlResolveDeadlineMs = 30_000;
/** etcd looks a name up again this long after a failed lookup. */
export const peerUrlResolveRetryMs = 1_000;

/** One of etcd's log lines about a lookup; `caller` is etcd's source position, which etcdctl prints. */
export interface PeerUrlResolveLogLine {
  level: 'info' | 'warn';
  message: string;
  caller: string;
  url: string;
  host: string;
  resolvedAddr?: string;
  /** Set on the lines etcd logs with its retry interval. */
  retryIntervalMs?: number;
  error?: string;
}

export interface PeerUrlResolverOptions {
  deadlineMs?: number;
  retryIntervalMs?: number;
  /** Looks a host name up to one address; rejects with Node's DNS error. */
  lookupAddress?: (host: string) => Promise<string>;
}

/** A resolver whose deadline starts now: make one for each comparison. */
export function dnsPeerUrlResolver(
  log: (line: PeerUrlResolveLogLine) => void,
  options: PeerUrlResolverOptions = {},
): PeerUrlResolver {
  const retryIntervalMs = options.retryIntervalMs ?? peerUrlResolveRetryMs;
  const deadline = performance.now() + (options.deadlineMs ?? peerUrlResolveDeadlineMs);
  const lookupAddress = options.lookupAddress ?? (async (host: string) => (await lookup(host)).address);
  return {
    async resolveUrl(url: string): Promise<string> {
      const parts = urlHostPart(url);
      if (parts === undefined) return url;
      const failed = (reason: string) => new ConfigError(`failed to resolve ${goQuoteString(url)} (${reason})`);
      const split = splitHostPort(parts.hostPort);
      if (typeof split === 'string') {
        log({
          level: 'warn',
          message: 'failed to parse URL Host while resolving URL',
          caller: 'netutil/netutil.go:98',
          url,
          host: parts.hostPort,
          error: split,
        });
        throw failed(split);
      }
      if (split.host === 'localhost' || isIP(split.host) !== 0) return url;
      const fields = { url, host: parts.hostPort };
      let lastError = 'context deadline exceeded';
      while (performance.now() < deadline) {
        try {
          const port = lookupPort(split.port);
          const address = await lookupAddress(split.host);
          const resolvedAddr = isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
          log({
            level: 'info',
            message: 'resolved URL Host',
            caller: 'netutil/netutil.go:112',
            ...fields,
            resolvedAddr,
          });
          return `${parts.before}${resolvedAddr}${parts.after}`;
        } catch (error) {
          lastError = lookupErrorText(split.host, error);
        }
        const retrying = { ...fields, retryIntervalMs, error: lastError };
        log({ level: 'warn', message: 'failed to resolve URL Host', caller: 'netutil/netutil.go:121', ...retrying });
        const remaining = deadline - performance.now();
        if (remaining <= retryIntervalMs) {
          await sleep(Math.max(0, remaining));
          log({
            level: 'warn',
            message: 'failed to resolve URL Host; returning',
            caller: 'netutil/netutil.go:131',
            ...retrying,
          });
          break;
        }
        await sleep(retryIntervalMs);
      }
      throw failed(lastError);
    },
  };
}

/** The URL split around its host:port; undefined for unix sockets, which etcd does not resolve. */
function urlHostPart(url: string): { before: string; hostPort: string; after: string } | undefined {
  const schemeEnd = url.indexOf('://');
  const scheme = schemeEnd < 0 ? '' : url.slice(0, schemeEnd);
  if (scheme === 'unix' || scheme === 'unixs') return undefined;
  const authorityStart = schemeEnd < 0 ? 0 : schemeEnd + 3;
  const authorityEnd = url.slice(authorityStart).search(/[/?#]/);
  const authority =
    authorityEnd < 0 ? url.slice(authorityStart) : url.slice(authorityStart, authorityStart + authorityEnd);
  const hostStart = authorityStart + authority.lastIndexOf('@') + 1;
  const hostEnd = authorityStart + authority.length;
  return { before: url.slice(0, hostStart), hostPort: url.slice(hostStart, hostEnd), after: url.slice(hostEnd) };
}

/** Go's net.SplitHostPort, with its error text for what it refuses. */
function splitHostPort(hostPort: string): { host: string; port: string } | string {
  const missingPort = `address ${hostPort}: missing port in address`;
  if (hostPort.startsWith('[')) {
    const close = hostPort.indexOf(']');
    if (close < 0) return `address ${hostPort}: missing ']' in address`;
    if (close + 1 === hostPort.length) return missingPort;
    if (hostPort[close + 1] !== ':') return `address ${hostPort}: missing port in address`;
    return { host: hostPort.slice(1, close), port: hostPort.slice(close + 2) };
  }
  const colon = hostPort.lastIndexOf(':');
  if (colon < 0) return missingPort;
  if (hostPort.indexOf(':') !== colon) return `address ${hostPort}: too many colons in address`;
  return { host: hostPort.slice(0, colon), port: hostPort.slice(colon + 1) };
}

/** A numeric port as Go's LookupPort reads it; service names are refused. */
function lookupPort(port: string): string {
  if (/^[0-9]+$/.test(port) && Number(port) <= 65_535) return String(Number(port));
  throw new Error(`lookup tcp/${port}: unknown port`);
}

/**
 * Go's DNS error text for a failed lookup. Go's resolver names the name server it asked, the first
 * in /etc/resolv.conf (127.0.0.1:53 without one).
 */
function lookupErrorText(host: string, error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as NodeJS.ErrnoException).code;
  const reason =
    code === 'ENOTFOUND' || code === 'ENODATA'
      ? 'no such host'
      : code === 'EAI_AGAIN' || code === 'ESERVFAIL'
        ? 'server misbehaving'
        : code === 'ETIMEOUT'
          ? 'i/o timeout'
          : undefined;
  if (reason === undefined) return error.message;
  return `lookup ${host} on ${firstNameServer()}: ${reason}`;
}

function firstNameServer(): string {
  let text = '';
  try {
    text = readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    // Go falls back to a local name server.
  }
  const server = /^\s*nameserver\s+(\S+)/m.exec(text)?.[1] ?? '127.0.0.1';
  return isIPv6(server) ? `[${server}]:53` : `${server}:53`;
}
