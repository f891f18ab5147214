/**
 * etcd's TLS files (transport.TLSInfo): a certificate and key read and checked as Go's
 * tls.X509KeyPair checks them, and CA bundles as tlsutil.NewCertPool reads them, with Go's error
 * texts. The server's listeners and tsetcdctl both load their files here.
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { goOpenErrorText } from '../lib/go-os-errors.js';

let crypto: typeof import('node:crypto') | undefined;

/** node:crypto, loaded when a file is first checked: tsetcdctl without TLS flags never needs it, and it slows its start. */
function nodeCrypto(): typeof import('node:crypto') {
  crypto ??= createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto');
  return crypto;
}

/** etcd's and Go's words for bad TLS files and settings. */
export const tlsErrorTexts = {
  keyAndCertRequired: (keyFile: string, certFile: string) =>
    `KeyFile and CertFile must both be present[key: ${keyFile}, cert: ${certFile}]`,
  noCertificatePem: 'tls: failed to find any PEM data in certificate input',
  keyInCertificateInput:
    'tls: failed to find certificate PEM data in certificate input, but did find a private key; PEM inputs may have been switched',
  noKeyPem: 'tls: failed to find any PEM data in key input',
  certificateInKeyInput: 'tls: found a certificate rather than a key in the PEM for the private key',
  keyUnparsable: 'tls: failed to parse private key',
  keyMismatch: 'tls: private key does not match public key',
  keyTypeMismatch: 'tls: private key type does not match public key type',
  certificateUnparsable: 'x509: malformed certificate',
  tbsCertificateUnparsable: 'x509: malformed tbs certificate',
  allowedCnAndHostname: (cn: string, hostname: string) =>
    `AllowedCN and AllowedHostname are mutually exclusive (cn=${JSON.stringify(cn)}, hostname=${JSON.stringify(hostname)})`,
  /** A verified certificate refused by --client-cert-allowed-hostname or --peer-cert-allowed-cn/-hostname. */
  certificateAuthenticationFailed: 'client certificate authentication failed',
  /** A certificate the CRL file revokes; `serialHex` is its serial number in lower-case hex. */
  certificateRevoked: (serialHex: string) => `transport: certificate serial ${serialHex} revoked`,
} as const;

/** A certificate and its key, both PEM, checked to belong together. */
export interface KeyPair {
  cert: Buffer;
  key: Buffer;
}

/** Reads one file, failing with Go's os.Open text ("open <path>: no such file or directory"). */
export function readTlsFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new Error(goOpenErrorText(path, error as NodeJS.ErrnoException), { cause: error });
  }
}

/** The types of the PEM blocks in `pem`, in order. */
function pemBlockTypes(pem: string): string[] {
  return [...pem.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----/g)].map((match) => match[1] ?? '');
}

function certificateInputProblem(types: string[]): string | undefined {
  if (types.includes('CERTIFICATE')) return undefined;
  if (types.length === 0) return tlsErrorTexts.noCertificatePem;
  if (types.length === 1 && types[0]?.endsWith('PRIVATE KEY')) return tlsErrorTexts.keyInCertificateInput;
  return `tls: failed to find "CERTIFICATE" PEM block in certificate input after skipping PEM blocks of the following types: [${types.join(' ')}]`;
}

function keyInputProblem(types: string[]): string | undefined {
  if (types.some((type) => type === 'PRIVATE KEY' || type.endsWith(' PRIVATE KEY'))) return undefined;
  if (types.length === 0) return tlsErrorTexts.noKeyPem;
  if (types.length === 1 && types[0] === 'CERTIFICATE') return tlsErrorTexts.certificateInKeyInput;
  return `tls: failed to find PEM block with type ending in "PRIVATE KEY" in key input after skipping PEM blocks of the following types: [${types.join(' ')}]`;
}

/** Go's tls.X509KeyPair checks: PEM blocks of the right kinds, parsable, and the key matching the certificate. */
export function keyPairProblem(cert: Buffer, key: Buffer): string | undefined {
  const certificateProblem = certificateInputProblem(pemBlockTypes(cert.toString('latin1')));
  if (certificateProblem !== undefined) return certificateProblem;
  const keyProblem = keyInputProblem(pemBlockTypes(key.toString('latin1')));
  if (keyProblem !== undefined) return keyProblem;
  let certificate: X509Certificate;
  try {
    certificate = new (nodeCrypto().X509Certificate)(cert);
  } catch {
    return tlsErrorTexts.certificateUnparsable;
  }
  let privateKey: KeyObject;
  try {
    privateKey = nodeCrypto().createPrivateKey(key);
  } catch {
    return tlsErrorTexts.keyUnparsable;
  }
  if (privateKey.asymmetricKeyType !== certificate.publicKey.asymmetricKeyType) return tlsErrorTexts.keyTypeMismatch;
  return certificate.checkPrivateKey(privateKey) ? undefined : tlsErrorTexts.keyMismatch;
}

/** Reads --cert-file and --key-file as etcd's TLSInfo does: both required, both readable, matching. */
export function loadKeyPair(certFile: string, keyFile: string): KeyPair {
  if (certFile === '' || keyFile === '') throw new Error(tlsErrorTexts.keyAndCertRequired(keyFile, certFile));
  const pair = { cert: readTlsFile(certFile), key: readTlsFile(keyFile) };
  const problem = keyPairProblem(pair.cert, pair.key);
  if (problem !== undefined) throw new Error(problem);
  return pair;
}

/**
 * Go's x509 parser names the part it failed on: a DER SEQUENCE whose first element is not itself
 * a SEQUENCE (a private key, say) fails at the tbs certificate, anything else as a whole.
 */
function certificateParseError(block: string): string {
  const base64 = block.replace(/-----[A-Z0-9 ]+-----/g, '').replace(/\s+/g, '');
  const der = Buffer.from(base64, 'base64');
  if (der[0] !== 0x30 || der.length < 2) return tlsErrorTexts.certificateUnparsable;
  const lengthBytes = (der[1] ?? 0) & 0x80 ? (der[1] ?? 0) & 0x7f : 0;
  const firstInnerTag = der[2 + lengthBytes];
  return firstInnerTag === 0x30 ? tlsErrorTexts.certificateUnparsable : tlsErrorTexts.tbsCertificateUnparsable;
}

/** Reads a trusted CA bundle; like Go, a file without PEM blocks is an empty pool, a bad block an error. */
export function loadCaBundle(caFile: string): Buffer {
  const bundle = readTlsFile(caFile);
  const blocks = bundle.toString('latin1').match(/-----BEGIN [A-Z0-9 ]+-----[\s\S]*?-----END [A-Z0-9 ]+-----/g) ?? [];
  for (const block of blocks) {
    try {
      new (nodeCrypto().X509Certificate)(block);
    } catch {
      throw new Error(certificateParseError(block));
    }
  }
  return bundle;
}
