/**
 * The client port's TLS settings from etcd's client flags (--cert-file, --key-file,
 * --trusted-ca-file, --client-cert-auth), read as etcd's transport.TLSInfo.ServerConfig does, and
 * the credentials the JSON gateway uses to dial its own TLS listener.
 */
import * as tls from 'node:tls';
import type * as grpc from '@grpc/grpc-js';
import { grpcJs } from './grpc-js.js';
import type { TlsConfig } from '../../src/config/config.js';
import { loadCaBundle, loadKeyPair, readTlsFile } from '../../src/config/tls-files.js';
import { opensslCiphers } from '../../src/config/cipher-suites.js';

/** The PEM files a TLS client listener serves with. */
export interface ClientTlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  crl?: Buffer;
  /** --cipher-suites in OpenSSL's names; Node's defaults when absent. */
  ciphers?: string;
  /** Whether every client must present a certificate signed by `ca`. */
  verifyClients: boolean;
}

/** Reads the client TLS files; throws etcd's messages for a missing flag, an unreadable file or a key not matching. */
export function readClientTlsMaterial(config: TlsConfig): ClientTlsMaterial {
  const material: ClientTlsMaterial = {
    ...loadKeyPair(config.certFile, config.keyFile),
    // etcd demands a verified client certificate as soon as a trusted CA is given, even without --client-cert-auth.
    verifyClients: config.trustedCaFile !== '' || config.clientCertAuth,
  };
  if (config.trustedCaFile !== '') material.ca = loadCaBundle(config.trustedCaFile);
  const crlFile = config.crlFile ?? '';
  if (crlFile !== '') material.crl = readTlsFile(crlFile);
  const ciphers = opensslCiphers(config.cipherSuites ?? []);
  if (ciphers !== undefined) material.ciphers = ciphers;
  return material;
}

/** Options for tls.createServer: TLS 1.2 at least, as etcd's baseConfig sets. */
export function serverTlsOptions(material: ClientTlsMaterial): tls.TlsOptions {
  const options: tls.TlsOptions = {
    cert: material.cert,
    key: material.key,
    minVersion: 'TLSv1.2',
    requestCert: material.verifyClients,
    rejectUnauthorized: material.verifyClients,
  };
  if (material.ca !== undefined) options.ca = material.ca;
  if (material.crl !== undefined) options.crl = material.crl;
  if (material.ciphers !== undefined) options.ciphers = material.ciphers;
  return options;
}

/**
 * How the JSON gateway dials this member's own TLS port: like etcd, it trusts the local server
 * without verifying it and presents the server's certificate as its client certificate.
 */
export function gatewayCredentials(material: ClientTlsMaterial): grpc.ChannelCredentials {
  return grpcJs().credentials.createSsl(material.ca ?? null, material.key, material.cert, {
    rejectUnauthorized: false,
    checkServerIdentity: () => undefined,
  });
}

/**
 * --client-cert-allowed-hostname: etcd accepts a client only when its certificate is valid for
 * this hostname (Go's VerifyHostname, checked here with Node's own host check); undefined when unset.
 */
export function allowedHostnameCheck(config: TlsConfig): ((socket: tls.TLSSocket) => boolean) | undefined {
  const hostname = config.allowedHostname ?? '';
  if (hostname === '') return undefined;
  return (socket) => {
    const certificate = socket.getPeerCertificate();
    return certificate.raw !== undefined && tls.checkServerIdentity(hostname, certificate) === undefined;
  };
}

/** The common name of a connection's verified TLS client certificate; undefined without one. */
export function verifiedCommonName(socket: unknown): string | undefined {
  const tlsSocket = socket as Partial<tls.TLSSocket> | undefined;
  if (tlsSocket?.authorized !== true || typeof tlsSocket.getPeerCertificate !== 'function') return undefined;
  const name: unknown = tlsSocket.getPeerCertificate().subject?.CN;
  const first: unknown = Array.isArray(name) ? name[0] : name;
  return typeof first === 'string' && first !== '' ? first : undefined;
}
