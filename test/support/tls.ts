/**
 * Throwaway TLS material for tests, made with openssl: two CAs and member certificates issued on
 * demand, revocation lists, JWT signing keys; and curl over TLS. Members that serve it start
 * through test/support/member.ts (MemberOptions.clientTls, autoTls).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TlsConfig } from '../../src/config/config.js';
import { runCommand, type CommandResult } from './etcdctl.js';
import { etcdBinaryPath, type SutLookup } from './sut.js';

export interface TestCertificates {
  dir: string;
  /**
   * TLS settings for a member whose certificate has this common name, signed by the given CA;
   * valid for 127.0.0.1 and localhost unless `altNames` (openssl's subjectAltName entries such as
   * `DNS:m.example`) name what it is valid for instead.
   */
  member(commonName: string, ca?: 'ca' | 'otherCa', altNames?: readonly string[]): TlsConfig;
  remove(): void;
}

/** True when the openssl binary is available for generating throwaway certificates. */
export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Generates two throwaway CAs in a temp dir; member certificates are issued on demand, valid for 127.0.0.1. */
export function makeCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'tsetcd-tls-'));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const keyArgs = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const ca of ['ca', 'otherCa']) {
    openssl(
      'req',
      '-x509',
      ...keyArgs,
      '-keyout',
      `${ca}.key`,
      '-out',
      `${ca}.crt`,
      '-days',
      '1',
      '-subj',
      `/CN=${ca}`,
    );
  }
  writeFileSync(
    join(dir, 'ext.cnf'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n',
  );
  const issued = new Set<string>();
  return {
    dir,
    member(commonName, ca = 'ca', altNames) {
      const name = `${commonName}-${ca}`;
      if (!issued.has(name)) {
        let extensions = 'ext.cnf';
        if (altNames !== undefined) {
          extensions = `${name}.cnf`;
          const lines = `subjectAltName=${altNames.join(',')}\nextendedKeyUsage=serverAuth,clientAuth\n`;
          writeFileSync(join(dir, extensions), lines);
        }
        openssl('req', ...keyArgs, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${commonName}`);
        openssl(
          'x509',
          '-req',
          '-in',
          `${name}.csr`,
          '-CA',
          `${ca}.crt`,
          '-CAkey',
          `${ca}.key`,
          '-CAcreateserial',
          '-out',
          `${name}.crt`,
          '-days',
          '1',
          '-extfile',
          extensions,
        );
        issued.add(name);
      }
      return {
        certFile: join(dir, `${name}.crt`),
        keyFile: join(dir, `${name}.key`),
        trustedCaFile: join(dir, `${ca}.crt`),
        clientCertAuth: true,
      };
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Revokes `certFile` with the test CA and writes the CRL; returns its path. */
export function revoke(dir: string, certFile: string): string {
  writeFileSync(
    join(dir, 'crl.cnf'),
    '[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\ncrlnumber=crlnumber\ndefault_md=sha256\ndefault_crl_days=1\n',
  );
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'crlnumber'), '01\n');
  const ca = ['-config', 'crl.cnf', '-keyfile', 'ca.key', '-cert', 'ca.crt'];
  execFileSync('openssl', ['ca', ...ca, '-revoke', certFile], { cwd: dir, stdio: 'pipe' });
  execFileSync('openssl', ['ca', ...ca, '-gencrl', '-out', 'ca.crl'], { cwd: dir, stdio: 'pipe' });
  return join(dir, 'ca.crl');
}

/**
 * Why a test that compares TLS members of etcd and the system under test cannot run here, or
 * false: etcd or openssl missing, or the system under test not available.
 */
export function tlsSkipReason(sut: SutLookup): string | false {
  if (!existsSync(etcdBinaryPath)) return `${etcdBinaryPath} is not installed`;
  if (!hasOpenssl()) return 'openssl is not installed';
  return sut.skipReason ?? false;
}

/** curl over TLS trusting `ca`, with `identity`'s client certificate when given; exit code 0 and the body when answered. */
export function curlTls(
  url: string,
  ca: string,
  identity: TlsConfig | undefined,
  extra: readonly string[] = [],
): Promise<CommandResult> {
  const certificate = identity === undefined ? [] : ['--cert', identity.certFile, '--key', identity.keyFile];
  return runCommand('curl', ['-s', '--max-time', '5', '--cacert', ca, ...certificate, ...extra, url]);
}

/** The curve each ECDSA signing method signs with (jwt-go refuses a key of another size). */
const ecCurves: Readonly<Record<string, string>> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' };

/**
 * Writes the key files etcd's --auth-token jwt takes for `signMethod` into `dir`: for HS* a random
 * secret (secret.key, read as raw bytes, given as priv-key only); for RS* and PS* an RSA key pair,
 * for ES* a key pair on the method's curve (priv.pem, pub.pem).
 */
export function makeJwtKeys(dir: string, signMethod: string): { privateKey: string; publicKey?: string } {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  if (signMethod.startsWith('HS')) {
    openssl('rand', '-hex', '-out', 'secret.key', '32');
    return { privateKey: join(dir, 'secret.key') };
  }
  const curve = ecCurves[signMethod];
  if (curve === undefined)
    openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'priv.pem');
  else openssl('ecparam', '-name', curve, '-genkey', '-noout', '-out', 'priv.pem');
  openssl('pkey', '-in', 'priv.pem', '-pubout', '-out', 'pub.pem');
  return { privateKey: join(dir, 'priv.pem'), publicKey: join(dir, 'pub.pem') };
}

/** etcd's --auth-token value for a JWT provider with these keys. */
export function jwtTokenFlag(
  keys: { privateKey: string; publicKey?: string },
  signMethod: string,
  ttl: string,
): string {
  const publicKey = keys.publicKey === undefined ? '' : `pub-key=${keys.publicKey},`;
  return `jwt,${publicKey}priv-key=${keys.privateKey},sign-method=${signMethod},ttl=${ttl}`;
}
