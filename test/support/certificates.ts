/**
 * Throwaway certificates made with openssl for TLS tests and benchmarks, and the client side of
 * them: the files a client presents, as etcdctl flags, and a /health probe over https.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TlsConfig } from '../../src/config/config.js';

/** What a TLS client needs: the CA that signed the servers' certificates, its own certificate and key. */
export type TlsFiles = Pick<TlsConfig, 'trustedCaFile' | 'certFile' | 'keyFile'>;

/** etcdctl's flags for connecting with `tls`; none without it. */
export function etcdctlTlsArgs(tls: TlsFiles | undefined): string[] {
  return tls === undefined ? [] : ['--cacert', tls.trustedCaFile, '--cert', tls.certFile, '--key', tls.keyFile];
}

export interface TestCertificates {
  dir: string;
  /** TLS settings for a member whose certificate has this common name, signed by the given CA. */
  member(commonName: string, ca?: 'ca' | 'otherCa'): TlsConfig;
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
  const dir = mkdtempSync(join(tmpdir(), 'tsetcd-peer-tls-'));
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
    member(commonName, ca = 'ca') {
      const name = `${commonName}-${ca}`;
      if (!issued.has(name)) {
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
          'ext.cnf',
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
