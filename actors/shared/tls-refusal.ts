/**
 * Refused TLS connections, logged as etcd's listeners log them: a warning 'rejected connection'
 * with remote-addr, server-name, the certificate's ip-addresses and dns-names when one was
 * presented and parsed, and the error. The error is OpenSSL's text where etcd's is Go's TLS
 * library's, and etcd's own where etcd writes its own (a revoked certificate, a refused host name).
 */
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { tlsErrorTexts } from '../../src/config/tls-files.js';

/** What is known of a refused TLS connection. */
export interface TlsRefusal {
  /** The client's address as host:port. */
  remote: string;
  /** The name the client asked for (SNI); empty when it sent none. */
  serverName: string;
  /** The presented certificate's subject alternative names, when etcd would list them. */
  certificate?: { ipAddresses: string[]; dnsNames: string[] };
  error: string;
}

/** The IP and DNS entries of a certificate's subjectAltName ("IP Address:127.0.0.1, DNS:localhost"). */
export function alternativeNames(certificate: PeerCertificate): { ipAddresses: string[]; dnsNames: string[] } {
  const names = { ipAddresses: [] as string[], dnsNames: [] as string[] };
  for (const entry of (certificate.subjectaltname ?? '').split(', ')) {
    if (entry.startsWith('IP Address:')) names.ipAddresses.push(entry.slice('IP Address:'.length));
    else if (entry.startsWith('DNS:')) names.dnsNames.push(entry.slice('DNS:'.length));
  }
  return names;
}

/** A serial number as Go's %x prints its bytes: lower case, without leading zero bytes. */
function serialHex(certificate: PeerCertificate): string {
  return certificate.serialNumber.toLowerCase().replace(/^(00)+(?=.)/, '');
}

/**
 * The client's host:port. A socket Node destroyed after a failed certificate check has lost its
 * own address; the TCP socket it wrapped (Node's _parent) still knows it.
 */
function remoteOf(socket: TLSSocket): string {
  const parent = (socket as TLSSocket & { _parent?: { remoteAddress?: string; remotePort?: number } | null })._parent;
  const address = socket.remoteAddress ?? parent?.remoteAddress ?? '';
  const port = socket.remotePort ?? parent?.remotePort ?? 0;
  return `${address}:${port}`;
}

function serverNameOf(socket: TLSSocket): string {
  const name: unknown = (socket as TLSSocket & { servername?: unknown }).servername;
  return typeof name === 'string' ? name : '';
}

/** A certificate the server verified and then refused (etcd's checks after Go's own), listed with its names. */
export function certificateRefusal(socket: TLSSocket, error: string): TlsRefusal {
  const certificate = socket.getPeerCertificate();
  return {
    remote: remoteOf(socket),
    serverName: serverNameOf(socket),
    ...(certificate.raw === undefined ? {} : { certificate: alternativeNames(certificate) }),
    error,
  };
}

/**
 * The error of a failed handshake: OpenSSL's reason (its short text, as Go's error is short), or
 * for a client certificate Node refused after the handshake (it then reports only a hang-up) the
 * verification error OpenSSL found.
 */
function handshakeErrorText(socket: TLSSocket, error: NodeJS.ErrnoException & { reason?: unknown }): string {
  // Typed as an Error, it holds OpenSSL's verification error code (e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE).
  const verifyError: unknown = socket.authorizationError;
  if (error.code === 'ECONNRESET' && typeof verifyError === 'string' && verifyError !== '')
    return `certificate verify failed: ${verifyError}`;
  return typeof error.reason === 'string' && error.reason !== '' ? error.reason : error.message;
}

/**
 * A handshake that failed (Node's tlsClientError). etcd checks its CRL after the handshake, so a
 * revoked certificate still at hand is reported as etcd does, with its names and etcd's text.
 */
export function handshakeRefusal(socket: TLSSocket, error: NodeJS.ErrnoException): TlsRefusal {
  if ((socket.authorizationError as unknown) === 'CERT_REVOKED' && !socket.destroyed) {
    const certificate = socket.getPeerCertificate();
    if (certificate.raw !== undefined)
      return certificateRefusal(socket, tlsErrorTexts.certificateRevoked(serialHex(certificate)));
  }
  return { remote: remoteOf(socket), serverName: serverNameOf(socket), error: handshakeErrorText(socket, error) };
}

/** Logs a refusal in etcd's words and fields; `logger` is the process logger or the peer transport's. */
export function logRejectedConnection(
  logger: { warn(fields: object, message: string): void },
  refusal: TlsRefusal,
): void {
  const names =
    refusal.certificate === undefined
      ? {}
      : { 'ip-addresses': refusal.certificate.ipAddresses, 'dns-names': refusal.certificate.dnsNames };
  logger.warn(
    { 'remote-addr': refusal.remote, 'server-name': refusal.serverName, ...names, error: refusal.error },
    'rejected connection',
  );
}
