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
/** Where Go's resolver finds its servers, search list and options. */
const resolvConfPath = '/etc/resolv.conf';

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

/** Go's cap on resolv.conf's ndots. */
const ndotsMax = 15;
/** The longest name Go sends to DNS, root dot included. */
const dnsNameBytesMax = 254;

/**
 * The names Go's resolver asks DNS for when it looks `name` up (its dnsConfig.nameList), by
 * resolv.conf's `search` (or `domain`) list and `ndots` option: a name with a trailing dot is
 * asked as it is; one with at least ndots dots (default 1) is asked first as it is and then with
 * each search domain; one with fewer is asked with each search domain first and as it is last.
 * Without a search list Go searches the domain of the host's own name. Names come without their
 * root dot.
 */
export function goNameList(name: string, resolvConf: string, hostname: string): string[] {
  if (name.endsWith('.')) return name.length >= dnsNameBytesMax ? [] : [name.slice(0, -1)];
  if (name.length > dnsNameBytesMax) return [];
  let search: string[] = [];
  let ndots = 1;
  for (const line of resolvConf.split('\n')) {
    // Go skips whole comment lines only.
    if (line.startsWith('#') || line.startsWith(';')) continue;
    const fields = line.trim().split(/\s+/);
    if (fields[0] === 'domain' && fields[1] !== undefined) search = [fields[1]];
    else if (fields[0] === 'search') search = fields.slice(1);
    else if (fields[0] === 'options')
      for (const option of fields.slice(1)) {
        // Go takes the leading digits (none reads as 0).
        if (option.startsWith('ndots:')) ndots = Math.min(Number(/^\d*/.exec(option.slice(6))?.[0] || 0), ndotsMax);
      }
  }
  const dot = hostname.indexOf('.');
  if (search.length === 0 && dot >= 0 && dot < hostname.length - 1) search = [hostname.slice(dot + 1)];
  const suffixed = search
    .map((suffix) => `${name}.${suffix.replace(/\.$/, '')}`)
    .filter((fqdn) => fqdn.length + 1 <= dnsNameBytesMax);
  const dots = name.split('.').length - 1;
  return dots >= ndots ? [name, ...suffixed] : [...suffixed, name];
}

/** A file's text, or '' when it cannot be read. */
function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** The names to ask DNS for `name`, from this host's resolv.conf (Go's defaults without one) and name. */
export function searchNames(name: string): string[] {
  // Where Go's os.Hostname reads the host's name on Linux.
  const ownName = readOrEmpty('/proc/sys/kernel/hostname').trim();
  return goNameList(name, readOrEmpty(resolvConfPath), ownName);
}

/** The A and AAAA answers for one name, IPv6 first. */
async function addressesOf(name: string): Promise<LookupAddress[]> {
  const resolver = new (dnsPromises().Resolver)();
  const [v4, v6] = await Promise.allSettled([resolver.resolve4(name), resolver.resolve6(name)]);
  return [
    ...(v6.status === 'fulfilled' ? v6.value.map((address) => ({ address, family: 6 })) : []),
    ...(v4.status === 'fulfilled' ? v4.value.map((address) => ({ address, family: 4 })) : []),
  ];
}

/** The addresses `hostname` names, hosts file first; rejects with ENOTFOUND when DNS has none either. */
export async function lookupHost(hostname: string): Promise<LookupAddress[]> {
  const name = hostname.toLowerCase().replace(/\.$/, '');
  const fromFile = hostsFile().get(name);
  if (fromFile !== undefined) return fromFile;
  // Go asks for the names in turn and takes the first that has addresses.
  let found: LookupAddress[] = [];
  for (const candidate of searchNames(hostname.toLowerCase())) {
    found = await addressesOf(candidate);
    if (found.length > 0) break;
  }
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
