/**
 * The certificate --auto-tls and --peer-auto-tls generate, as DER, shaped like etcd's
 * transport.SelfCert: subject and issuer O=etcd, key usages digital signature and key
 * encipherment, extended key usage server auth, basic constraints CA:FALSE, and the listen URLs'
 * hosts as IP or DNS subject alternative names. Pure: the caller supplies time, serial, key and signer.
 */
import { isIP } from 'node:net';

/** What one certificate needs; the signer signs the DER TBSCertificate with ECDSA and SHA-512. */
export interface SelfSignedCertificateInput {
  /** Positive serial number, big-endian. */
  serial: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** host:port of each listen URL, as etcd passes them. */
  hosts: readonly string[];
  /** The public key as DER SubjectPublicKeyInfo. */
  subjectPublicKeyInfo: Buffer;
  sign: (tbsCertificate: Buffer) => Buffer;
}

const oids = {
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  organization: '2.5.4.10',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  basicConstraints: '2.5.29.19',
  subjectAltName: '2.5.29.17',
  serverAuth: '1.3.6.1.5.5.7.3.1',
};

function length(bytes: number): Buffer {
  if (bytes < 0x80) return Buffer.from([bytes]);
  const digits: number[] = [];
  for (let rest = bytes; rest > 0; rest = Math.floor(rest / 256)) digits.unshift(rest % 256);
  return Buffer.from([0x80 | digits.length, ...digits]);
}

function tlv(tag: number, ...contents: Buffer[]): Buffer {
  const body = Buffer.concat(contents);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

const sequence = (...items: Buffer[]) => tlv(0x30, ...items);

function oid(text: string): Buffer {
  const [first = 0, second = 0, ...rest] = text.split('.').map(Number);
  const bytes = [first * 40 + second];
  for (const arc of rest) {
    const groups: number[] = [];
    for (let value = arc; ; value = Math.floor(value / 128)) {
      groups.unshift((value % 128) | (groups.length === 0 ? 0 : 0x80));
      if (value < 128) break;
    }
    bytes.push(...groups);
  }
  return tlv(0x06, Buffer.from(bytes));
}

function integer(bigEndian: Buffer): Buffer {
  let start = 0;
  while (start < bigEndian.length - 1 && bigEndian[start] === 0) start += 1;
  const trimmed = bigEndian.subarray(start);
  // A set high bit would read as negative, so DER puts a zero byte in front.
  return tlv(0x02, (trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

/** UTCTime through 2049, GeneralizedTime after, as Go's x509 writes validity. */
function time(date: Date): Buffer {
  const iso = date.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return date.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), ...(critical ? [Buffer.from([0x01, 0x01, 0xff])] : []), tlv(0x04, value));
}

/** IP addresses as 4 or 16 bytes; IPv4 is written in its short form, as Go does. */
function ipBytes(address: string): Buffer {
  if (isIP(address) === 4) return Buffer.from(address.split('.').map(Number));
  const [head = '', tail = ''] = address.split('::');
  const groups = (text: string) => (text === '' ? [] : text.split(':'));
  const missing = 8 - groups(head).length - groups(tail).length;
  const all = address.includes('::')
    ? [...groups(head), ...Array<string>(missing).fill('0'), ...groups(tail)]
    : groups(address);
  return Buffer.concat(all.map((group) => Buffer.from([parseInt(group, 16) >> 8, parseInt(group, 16) & 0xff])));
}

/** The subjectAltName entries for the listen URLs' hosts (Go's SplitHostPort, then IP or DNS name). */
function alternativeNames(hosts: readonly string[]): Buffer[] {
  const names: Buffer[] = [];
  for (const host of hosts) {
    const name = host.replace(/:\d*$/, '').replace(/^\[(.*)\]$/, '$1');
    if (name === '') continue;
    names.push(isIP(name) !== 0 ? tlv(0x87, ipBytes(name)) : tlv(0x82, Buffer.from(name, 'ascii')));
  }
  return names;
}

/** The certificate, DER-encoded. */
export function selfSignedCertificate(input: SelfSignedCertificateInput): Buffer {
  const algorithm = sequence(oid(oids.ecdsaWithSha512));
  const name = sequence(tlv(0x31, sequence(oid(oids.organization), tlv(0x13, Buffer.from('etcd')))));
  const names = alternativeNames(input.hosts);
  const extensions = [
    // digitalSignature (bit 0) and keyEncipherment (bit 2): 0b101 in the top bits, 5 unused bits.
    extension(oids.keyUsage, true, tlv(0x03, Buffer.from([0x05, 0xa0]))),
    extension(oids.extKeyUsage, false, sequence(oid(oids.serverAuth))),
    extension(oids.basicConstraints, true, sequence()),
    ...(names.length > 0 ? [extension(oids.subjectAltName, false, sequence(...names))] : []),
  ];
  const tbs = sequence(
    tlv(0xa0, integer(Buffer.from([2]))),
    integer(input.serial),
    algorithm,
    name,
    sequence(time(input.notBefore), time(input.notAfter)),
    name,
    input.subjectPublicKeyInfo,
    tlv(0xa3, sequence(...extensions)),
  );
  const signature = input.sign(tbs);
  return sequence(tbs, algorithm, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
}
