/**
 * etcdctl's --discovery-srv: the client endpoints of a domain from its DNS SRV records
 * (_etcd-client-ssl._tcp.<domain> as https, _etcd-client._tcp.<domain> as http, each with
 * -<name> appended under --discovery-srv-name), asked of the system resolver (/etc/resolv.conf),
 * ordered and worded as etcdctl's Go resolver orders and words them.
 */
import type { SrvRecord } from 'node:dns';
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { discoveryTexts } from '../src/api/errors.js';
import { dnsAttemptsDefault, dnsQueryTimeoutSecondsDefault } from '../src/lib/limits.js';
import type { FlagValues } from './flags.js';
import { goQuote } from './go-format.js';
import { searchNames } from './host-lookup.js';
import { dnsPromises, nodeDgram } from './lazy-modules.js';

/** What discovery found: the endpoints and the lines etcdctl prints about those it drops, or its error. */
export type Discovery =
  | { readonly ok: true; readonly endpoints: readonly string[]; readonly notices: readonly string[] }
  | { readonly ok: false; readonly error: string };

/** etcdctl's SRV service name for the scheme: etcd-client, etcd-client-ssl, then -<name> when given. */
export function srvServiceName(scheme: 'https' | 'http', serviceName: string): string {
  const service = scheme === 'https' ? 'etcd-client-ssl' : 'etcd-client';
  return serviceName === '' ? service : `${service}-${serviceName}`;
}

/** The server Go's resolver names in its errors: host:port, an IPv6 host in brackets, port 53 unless told. */
function goServerName(server: string | undefined): string {
  if (server === undefined) return '127.0.0.1:53';
  if (/^\[.*\]:\d+$/.test(server) || /^[^:]+:\d+$/.test(server)) return server;
  return server.includes(':') ? `[${server}]:53` : `${server}:53`;
}

/**
 * The local end of a UDP socket towards `server` (host:port as Go names it), as Go's "read udp
 * <local>-><server>" shows it: the source address the system picks and an ephemeral port.
 */
async function udpLocalEnd(server: string): Promise<string> {
  const { host, port } = /^\[(?<host>.*)\]:(?<port>\d+)$/.exec(server)?.groups ??
    /^(?<host>[^:]*):(?<port>\d+)$/.exec(server)?.groups ?? { host: '127.0.0.1', port: '53' };
  const socket = nodeDgram().createSocket(isIPv6(host ?? '') ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(Number(port), host, resolve);
    });
    const local = socket.address();
    return local.family === 'IPv6' ? `[${local.address}]:${local.port}` : `${local.address}:${local.port}`;
  } catch {
    return isIPv6(host ?? '') ? '[::]:0' : '0.0.0.0:0';
  } finally {
    socket.close();
  }
}

/** Go's text for a failed look-up of `name`, from node:dns's error code. */
async function lookupErrorText(name: string, error: unknown): Promise<string> {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  const servers = dnsPromises().getServers();
  // Go names the server that answered: the first for a missing name (no other is asked), else the last asked.
  if (code === 'ENOTFOUND' || code === 'ENODATA')
    return discoveryTexts.lookup(name, goServerName(servers[0]), discoveryTexts.noSuchHost);
  const server = goServerName(servers[servers.length - 1]);
  if (code === 'ETIMEOUT' || code === 'ECANCELLED')
    return discoveryTexts.lookup(name, server, discoveryTexts.timeout(await udpLocalEnd(server), server));
  if (code === 'ECONNREFUSED')
    return discoveryTexts.lookup(name, server, discoveryTexts.refused(await udpLocalEnd(server), server));
  return discoveryTexts.lookup(name, server, discoveryTexts.serverMisbehaving);
}

/**
 * How long Go's resolver asks before it gives up on a name: resolv.conf's `options timeout:n`
 * seconds per query and `attempts:n` rounds over every server (5 s and 2 rounds unless told).
 */
export function goLookupBudgetMs(resolvConf: string, serverCount: number): number {
  const option = (name: string, fallback: number): number => {
    const found = new RegExp(`^options\\s.*\\b${name}:(\\d+)`, 'm').exec(resolvConf)?.[1];
    return found === undefined || Number(found) < 1 ? fallback : Number(found);
  };
  const timeoutSeconds = option('timeout', dnsQueryTimeoutSecondsDefault);
  return timeoutSeconds * 1000 * option('attempts', dnsAttemptsDefault) * Math.max(1, serverCount);
}

/** An SRV look-up given up after Go's budget rather than c-ares' own (longer) one. */
async function resolveSrvInGoTime(name: string): Promise<SrvRecord[]> {
  const resolver = new (dnsPromises().Resolver)();
  let resolvConf = '';
  try {
    resolvConf = readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    // No resolv.conf: Go's defaults.
  }
  const timer = setTimeout(() => resolver.cancel(), goLookupBudgetMs(resolvConf, resolver.getServers().length));
  try {
    return await resolver.resolveSrv(name);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Go's order of SRV records (RFC 2782): sorted by priority and weight, then within one priority
 * shuffled so that a record's chance to come first is its share of the weights (Go swaps the
 * chosen record to the front, which is what is done here too).
 */
export function orderSrvRecords(records: readonly SrvRecord[], random: () => number = Math.random): SrvRecord[] {
  const sorted = [...records].sort((a, b) => a.priority - b.priority || a.weight - b.weight);
  for (let start = 0; start < sorted.length;) {
    let end = start;
    while (end < sorted.length && sorted[end]?.priority === sorted[start]?.priority) end++;
    shuffleByWeight(sorted, start, end, random);
    start = end;
  }
  return sorted;
}

function shuffleByWeight(records: SrvRecord[], start: number, end: number, random: () => number): void {
  let weightSum = 0;
  for (let index = start; index < end; index++) weightSum += records[index]?.weight ?? 0;
  for (let first = start; weightSum > 0 && end - first > 1; first++) {
    const pick = Math.floor(random() * weightSum);
    let running = 0;
    for (let index = first; index < end; index++) {
      running += records[index]?.weight ?? 0;
      if (running > pick) {
        [records[first], records[index]] = [records[index]!, records[first]!];
        break;
      }
    }
    weightSum -= records[first]?.weight ?? 0;
  }
}

/**
 * The SRV records of `name`, asked under each name resolv.conf's search list and ndots make of it
 * (as Go asks) until one answers; else the last failure.
 */
async function resolveSrvSearching(name: string): Promise<SrvRecord[]> {
  let failure: unknown = new Error(`expected a name to look up for ${name}`);
  for (const candidate of searchNames(name)) {
    try {
      return await resolveSrvInGoTime(candidate);
    } catch (error) {
      failure = error;
    }
  }
  throw failure;
}

/** The endpoints of one SRV service: `<scheme>://<target>:<port>`, the target keeping its root dot as Go's does. */
async function lookupService(scheme: 'https' | 'http', name: string): Promise<string[]> {
  const records = orderSrvRecords(await resolveSrvSearching(name));
  return records.map((record) => `${scheme}://${record.name.replace(/\.?$/, '.')}:${record.port}`);
}

/** etcdctl's srv.GetClient: both services are asked; an error only when both fail. */
export async function discoverEndpoints(domain: string, serviceName: string, insecure: boolean): Promise<Discovery> {
  const found: string[] = [];
  const failures: string[] = [];
  for (const scheme of ['https', 'http'] as const) {
    const name = `_${srvServiceName(scheme, serviceName)}._tcp.${domain}`;
    try {
      found.push(...(await lookupService(scheme, name)));
    } catch (error) {
      failures.push(await lookupErrorText(name, error));
    }
  }
  if (failures.length === 2) return { ok: false, error: discoveryTexts.lookupErrors(failures[0]!, failures[1]!) };
  if (insecure) return { ok: true, endpoints: found, notices: [] };
  // Without --insecure-discovery only https endpoints are kept; each dropped one is named on stderr.
  const dropped = found.filter((endpoint) => endpoint.startsWith('http://'));
  return {
    ok: true,
    endpoints: found.filter((endpoint) => !endpoint.startsWith('http://')),
    notices: dropped.map((endpoint) => `${discoveryTexts.ignoringInsecure(goQuote(Buffer.from(endpoint)))}\n`),
  };
}

/** The --discovery-srv look-up the flags ask for, or undefined when they name no domain. */
export async function discoveryFromFlags(flags: FlagValues): Promise<Discovery | undefined> {
  const domain = flags.string('discovery-srv');
  if (domain === '') return undefined;
  return discoverEndpoints(domain, flags.string('discovery-srv-name'), flags.bool('insecure-discovery'));
}

/**
 * The TLS server name etcdctl verifies every endpoint against: the discovery domain unless
 * --insecure-discovery (then each endpoint's own host).
 */
export function discoveryServerName(flags: FlagValues): string | undefined {
  const domain = flags.string('discovery-srv');
  return domain === '' || flags.bool('insecure-discovery') ? undefined : domain;
}
