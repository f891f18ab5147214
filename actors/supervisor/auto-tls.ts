/**
 * --auto-tls and --peer-auto-tls: like etcd's SelfCert, a member without certificate flags gets a
 * self-signed ECDSA certificate (P-521, SHA-512, valid one year, for its listen URLs' hosts)
 * under <data-dir>/fixtures/client or fixtures/peer, made once and reused on restart.
 */
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MemberConfig, TlsConfig } from '../../src/config/config.js';
import { selfSignedCertificate } from '../../src/config/self-signed-cert.js';
import { selfSignedCertValidityMs } from '../../src/lib/limits.js';
import type { Logger } from '../shared/logger.js';

function pem(type: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${type}-----\n${lines.join('\n')}\n-----END ${type}-----\n`;
}

/** Writes cert.pem and key.pem into `dir` unless both are there; returns their paths. */
function selfCert(dir: string, listenUrls: readonly string[], logger: Logger): { certFile: string; keyFile: string } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  if (existsSync(certFile) && existsSync(keyFile)) return { certFile, keyFile };
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-521' });
  const now = Date.now();
  const der = selfSignedCertificate({
    // A random serial below 2^128, as etcd draws it.
    serial: randomBytes(16),
    notBefore: new Date(now),
    notAfter: new Date(now + selfSignedCertValidityMs),
    hosts: listenUrls.map((url) => new URL(url).host),
    subjectPublicKeyInfo: publicKey.export({ type: 'spki', format: 'der' }),
    sign: (tbs) => sign('sha512', tbs, privateKey),
  });
  writeFileSync(certFile, pem('CERTIFICATE', der));
  logger.info({ path: certFile }, 'created cert file');
  writeFileSync(keyFile, privateKey.export({ type: 'sec1', format: 'pem' }), { mode: 0o600 });
  logger.info({ path: keyFile }, 'created key file');
  return { certFile, keyFile };
}

function autoTls(
  tls: TlsConfig,
  side: 'client' | 'peer',
  dataDir: string,
  listenUrls: readonly string[],
  logger: Logger,
): TlsConfig {
  if (tls.autoTls !== true) return tls;
  if (tls.certFile !== '' || tls.keyFile !== '') {
    logger.warn(`ignoring ${side} auto TLS since certs given`);
    return tls;
  }
  return { ...tls, ...selfCert(join(dataDir, 'fixtures', side), listenUrls, logger), selfSigned: true };
}

/** The configuration with generated certificates in place of the auto-TLS flags (peer first, as etcd does). */
export function applyAutoTls(config: MemberConfig, logger: Logger): MemberConfig {
  const peerTls = autoTls(config.peerTls, 'peer', config.dataDir, config.listenPeerUrls, logger);
  const clientTls = autoTls(config.clientTls, 'client', config.dataDir, config.listenClientUrls, logger);
  return { ...config, peerTls, clientTls };
}
