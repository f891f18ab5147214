/**
 * The client side of the test certificates (made by test/support/tls.ts): the files a TLS client
 * presents, and them as etcdctl flags.
 */
import type { TlsConfig } from '../../src/config/config.js';

export { hasOpenssl, makeCertificates, type TestCertificates } from './tls.js';

/** What a TLS client needs: the CA that signed the servers' certificates, its own certificate and key. */
export type TlsFiles = Pick<TlsConfig, 'trustedCaFile' | 'certFile' | 'keyFile'>;

/** etcdctl's flags for connecting with `tls`; none without it. */
export function etcdctlTlsArgs(tls: TlsFiles | undefined): string[] {
  return tls === undefined ? [] : ['--cacert', tls.trustedCaFile, '--cert', tls.certFile, '--key', tls.keyFile];
}
