/**
 * etcdctl's --discovery-srv: the client endpoints of a domain from its DNS SRV records
 * (_etcd-client-ssl._tcp.<domain> as https, _etcd-client._tcp.<domain> as http, each with
 * -<name> appended under --discovery-srv-name), asked of the system resolver (/etc/resolv.conf),
 * ordered and worded as etcdctl's Go resolver orders and words them.
 */
import type { SrvRecord } from 'node:dns';
import { discoveryTexts } from '../src/api/errors.js';
import type { FlagValues } from './flags.js';
import { goQuote } from './go-format.js';
import { dnsPromises } from './lazy-modules.js';

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

/** Go's text for a failed look-up of `name`, from node:dns's error code. */
function lookupErrorText(name: string, error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  const servers = dnsPromises().getServers();
  // Go names the server that answered: the first for a missing name (no other is asked), else the last asked.
  if (code === 'ENOTFOUND' || code === 'ENODATA')
    return discoveryTexts.lookup(name, goServerName(servers[0]), discoveryTexts.noSuchHost);
  const reason =
    code === 'ETIMEOUT' || code === 'ECONNREFUSED' ? discoveryTexts.timeout : discoveryTexts.serverMisbehaving;
  return discoveryTexts.lookup(name, goServerName(servers[servers.length - 1]), reason);
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

/** The endpoints of one SRV service: `<scheme>://<target>:<port>`, the target keeping its root dot as Go's does. */
async function lookupService(scheme: 'https' | 'http', name: string): Promise<string[]> {
  const records = orderSrvRecords(await dnsPromises().resolveSrv(name));
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
      failures.push(lookupErrorText(name, error));
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
