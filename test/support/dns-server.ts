/**
 * A small authoritative DNS server for tests: SRV, A and AAAA records from a zone given as JSON,
 * over UDP. Run as a program (`node dns-server.js <zone JSON> [host] [port]`) it serves until
 * killed and prints "ready" once bound, so a test can start it inside a network namespace with
 * `ip netns exec` and point that namespace's resolv.conf at it.
 */
import { createSocket } from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';
import { fileURLToPath } from 'node:url';

export interface SrvRecord {
  readonly priority: number;
  readonly weight: number;
  readonly port: number;
  /** The target host name, without the trailing dot. */
  readonly target: string;
}

/** Records by lower-case name without the trailing dot. */
export interface DnsZone {
  readonly srv?: Readonly<Record<string, readonly SrvRecord[]>>;
  readonly a?: Readonly<Record<string, readonly string[]>>;
  readonly aaaa?: Readonly<Record<string, readonly string[]>>;
  /** Names answered with SERVFAIL, whatever is asked. */
  readonly serverFailure?: readonly string[];
  /** Names never answered: a query for one is read and dropped, as by a server that does not respond. */
  readonly unanswered?: readonly string[];
}

const typeA = 1;
const typeAaaa = 28;
const typeSrv = 33;
const classIn = 1;
const rcodeNoError = 0;
const rcodeServerFailure = 2;
const rcodeNameError = 3;
const rcodeNotImplemented = 4;
/** Seconds a client may cache an answer; the tests never wait that long. */
const answerTtlSeconds = 60;
/** Bytes of a DNS header. */
const headerBytes = 12;
/** A name has at most this many labels (RFC 1035 caps a name at 255 bytes). */
const labelsMax = 128;

/** Reads the uncompressed name at `offset` (queries carry no compression); returns it and the offset after it. */
function readName(packet: Buffer, offset: number): { name: string; next: number } {
  const labels: string[] = [];
  let at = offset;
  for (let count = 0; count < labelsMax; count++) {
    const length = packet[at];
    if (length === undefined) throw new Error(`expected a label length at byte ${at}, saw the end of the packet`);
    if (length === 0) return { name: labels.join('.').toLowerCase(), next: at + 1 };
    if (length >= 0xc0) throw new Error(`expected no compression in a query, saw a pointer at byte ${at}`);
    labels.push(packet.subarray(at + 1, at + 1 + length).toString('latin1'));
    at += 1 + length;
  }
  throw new Error(`expected at most ${labelsMax} labels in a name`);
}

function encodeName(name: string): Buffer {
  const labels = name.split('.').filter((label) => label !== '');
  return Buffer.concat([
    ...labels.map((label) => Buffer.concat([Buffer.of(label.length), Buffer.from(label)])),
    Buffer.of(0),
  ]);
}

function resourceRecord(name: string, type: number, data: Buffer): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(type, 0);
  fixed.writeUInt16BE(classIn, 2);
  fixed.writeUInt32BE(answerTtlSeconds, 4);
  fixed.writeUInt16BE(data.length, 8);
  return Buffer.concat([encodeName(name), fixed, data]);
}

function addressBytes(address: string): Buffer {
  if (isIPv4(address)) return Buffer.from(address.split('.').map(Number));
  if (!isIPv6(address)) throw new Error(`expected an IP address in the zone, saw ${address}`);
  const [head = '', tail = ''] = address.split('::');
  const groups = (part: string): number[] =>
    part === '' ? [] : part.split(':').map((group) => Number.parseInt(group, 16));
  const front = groups(head);
  const back = address.includes('::') ? groups(tail) : [];
  const all = [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
  const bytes = Buffer.alloc(16);
  all.forEach((group, index) => bytes.writeUInt16BE(group, index * 2));
  return bytes;
}

/** The records of `zone` answering (name, type), and the response code. */
function lookup(zone: DnsZone, name: string, type: number): { rcode: number; answers: Buffer[] } {
  if (zone.serverFailure?.includes(name) === true) return { rcode: rcodeServerFailure, answers: [] };
  const srv = zone.srv?.[name];
  const a = zone.a?.[name];
  const aaaa = zone.aaaa?.[name];
  if (srv === undefined && a === undefined && aaaa === undefined) return { rcode: rcodeNameError, answers: [] };
  const answers: Buffer[] = [];
  if (type === typeSrv)
    for (const record of srv ?? []) {
      const fixed = Buffer.alloc(6);
      fixed.writeUInt16BE(record.priority, 0);
      fixed.writeUInt16BE(record.weight, 2);
      fixed.writeUInt16BE(record.port, 4);
      answers.push(resourceRecord(name, typeSrv, Buffer.concat([fixed, encodeName(record.target)])));
    }
  if (type === typeA) for (const address of a ?? []) answers.push(resourceRecord(name, typeA, addressBytes(address)));
  if (type === typeAaaa)
    for (const address of aaaa ?? []) answers.push(resourceRecord(name, typeAaaa, addressBytes(address)));
  return { rcode: rcodeNoError, answers };
}

/** The response to one query packet; undefined for a packet that is not a query this server reads. */
export function answerQuery(query: Buffer, zone: DnsZone): Buffer | undefined {
  if (query.length < headerBytes) return undefined;
  const flags = query.readUInt16BE(2);
  if ((flags & 0x8000) !== 0 || query.readUInt16BE(4) !== 1) return undefined;
  let question: { name: string; next: number };
  try {
    question = readName(query, headerBytes);
  } catch {
    return undefined;
  }
  if (question.next + 4 > query.length) return undefined;
  if (zone.unanswered?.includes(question.name) === true) return undefined;
  const type = query.readUInt16BE(question.next);
  const known = type === typeA || type === typeAaaa || type === typeSrv;
  const { rcode, answers } = known ? lookup(zone, question.name, type) : { rcode: rcodeNotImplemented, answers: [] };
  const header = Buffer.alloc(headerBytes);
  header.writeUInt16BE(query.readUInt16BE(0), 0);
  // QR, AA, the query's RD, RA and the response code.
  header.writeUInt16BE(0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | rcode, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  return Buffer.concat([header, query.subarray(headerBytes, question.next + 4), ...answers]);
}

/** Serves `zone` on UDP host:port until the process ends; resolves once bound. */
export function serveZone(zone: DnsZone, host: string, port: number): Promise<void> {
  const socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
  socket.on('message', (query, peer) => {
    const response = answerQuery(query, zone);
    if (response !== undefined) socket.send(response, peer.port, peer.address);
  });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => resolve());
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const zone = JSON.parse(process.argv[2] ?? '{}') as DnsZone;
  void serveZone(zone, process.argv[3] ?? '127.0.0.1', Number(process.argv[4] ?? '53')).then(() =>
    process.stdout.write('ready\n'),
  );
}
