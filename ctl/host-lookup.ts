/**
 * Host names looked up as etcdctl's Go resolver looks them up: /etc/hosts first, then A and AAAA
 * queries to the servers /etc/resolv.conf names, the answers ordered by RFC 6724's precedence
 * (IPv6 loopback, then IPv6, then IPv4). Not getaddrinfo: Node runs it on libuv's thread pool and
 * its exit joins that pool, so a DNS server that never answers would hold the exit of a command
 * that has already failed (etcdctl's os.Exit waits for nothing) for the system resolver's whole
 * timeout. These queries run on the event loop and end with the process.
 */
import type { LookupAddress, LookupOptions } from 'node:dns';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dnsPromises } from './lazy-modules.js';

/** The hosts file Go's resolver reads before asking DNS. */
const hostsFilePath = '/etc/hosts';

let hostsByName: Map<string, LookupAddress[]> | undefined;

/** The hosts file's addresses by lower-case name, in file order, as Go's lookupStaticHost has them. */
export function parseHostsFile(text: string): Map<string, LookupAddress[]> {
  const byName = new Map<string, LookupAddress[]>();
  for (const line of text.split('\n')) {
    const fields = line.replace(/#.*/, '').trim().split(/\s+/);
    const address = (fields[0] ?? '').replace(/%.*$/, '');
    const family = isIP(address);
    if (family === 0) continue;
    for (const name of fields.slice(1)) {
      const key = name.toLowerCase().replace(/\.$/, '');
      const known = byName.get(key) ?? [];
      if (!known.some((entry) => entry.address === address)) known.push({ address, family });
      byName.set(key, known);
    }
  }
  return byName;
}

function hostsFile(): Map<string, LookupAddress[]> {
  if (hostsByName === undefined) {
    let text = '';
    try {
      text = readFileSync(hostsFilePath, 'utf8');
    } catch {
      // No hosts file: every name goes to DNS, as in Go.
    }
    hostsByName = parseHostsFile(text);
  }
  return hostsByName;
}

/** RFC 6724's default precedence of a destination address (rule 6). */
export function rfc6724Precedence(address: LookupAddress): number {
  if (address.family === 4) return 35;
  const text = address.address.toLowerCase();
  if (text === '::1') return 50;
  if (text.startsWith('::ffff:')) return 35;
  if (text.startsWith('2002:')) return 30;
  if (/^2001:0*:/.test(text)) return 5;
  if (/^f[cd]/.test(text)) return 3;
  if (/^fe[c-f]/.test(text) || text.startsWith('3ffe:') || /^::[0-9a-f]*(:[0-9a-f]*)?$/.test(text)) return 1;
  return 40;
}

/** The addresses `hostname` names, hosts file first; rejects with ENOTFOUND when DNS has none either. */
export async function lookupHost(hostname: string): Promise<LookupAddress[]> {
  const name = hostname.toLowerCase().replace(/\.$/, '');
  const fromFile = hostsFile().get(name);
  if (fromFile !== undefined) return fromFile;
  const resolver = new (dnsPromises().Resolver)();
  const [v4, v6] = await Promise.allSettled([resolver.resolve4(name), resolver.resolve6(name)]);
  const found: LookupAddress[] = [
    ...(v6.status === 'fulfilled' ? v6.value.map((address) => ({ address, family: 6 })) : []),
    ...(v4.status === 'fulfilled' ? v4.value.map((address) => ({ address, family: 4 })) : []),
  ];
  if (found.length === 0) {
    const error: NodeJS.ErrnoException = new Error(`lookup ${name}: no such host`);
    error.code = 'ENOTFOUND';
    throw error;
  }
  // Array.prototype.sort is stable: within one precedence the DNS answer's order stays.
  return found.sort((a, b) => rfc6724Precedence(b) - rfc6724Precedence(a));
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** lookupHost as node:net's `lookup` option takes it: every address with `all`, else the first. */
export function netLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  lookupHost(hostname).then(
    (found) => {
      const wanted =
        options.family === 4 || options.family === 6 ? found.filter((a) => a.family === options.family) : found;
      if (options.all === true) callback(null, wanted);
      else if (wanted[0] === undefined)
        callback(Object.assign(new Error(`lookup ${hostname}`), { code: 'ENOTFOUND' }), '');
      else callback(null, wanted[0].address, wanted[0].family);
    },
    (error: NodeJS.ErrnoException) => callback(error, options.all === true ? [] : ''),
  );
}
