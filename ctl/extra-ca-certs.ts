/**
 * NODE_EXTRA_CA_CERTS, honoured without its start-up cost. Node reads that file, and builds its
 * store of default root certificates with it, as every process starts: 40-60 ms before a line of
 * tsetcdctl runs, even for commands that never dial TLS. bin/tsetcdctl.cjs, started as a program,
 * hands the variable over as TSETCDCTL_EXTRA_CA_CERTS instead; this module puts it back for the
 * processes tsetcdctl starts, and adds the file's certificates where Node would have used them: a
 * TLS context made without its own `ca` (an https endpoint without --cacert), which Node gives the
 * default roots. One made with `ca` trusts that alone, with or without the variable, as in Node.
 */
import { readFileSync } from 'node:fs';
import type * as Tls from 'node:tls';
import { nodeOs } from './lazy-modules.js';

/** The variable bin/tsetcdctl.cjs moves NODE_EXTRA_CA_CERTS into. */
export const deferredExtraCaCertsVariable = 'TSETCDCTL_EXTRA_CA_CERTS';

/** The certificates of the extra CA file, read at start as Node reads it, when this process adds them itself. */
let deferredPem: Buffer | undefined;
let patchedTls: typeof Tls | undefined;

/** glibc's texts for the errors an open of the file can meet, as OpenSSL words them in Node's warning. */
const openErrorTexts: Readonly<Record<string, string>> = {
  ENOENT: 'No such file or directory',
  ENOTDIR: 'Not a directory',
  EACCES: 'Permission denied',
  ELOOP: 'Too many levels of symbolic links',
  ENAMETOOLONG: 'File name too long',
};

/** Node's start-up warning for an extra CA file it cannot open. */
function openWarning(file: string, error: NodeJS.ErrnoException): string {
  const code = error.code ?? '';
  const errnos = nodeOs().constants.errno;
  const errno = errnos[code as keyof typeof errnos] ?? 0;
  const reason = `error:${(0x80000000 + errno).toString(16).toUpperCase()}:system library::${openErrorTexts[code] ?? code}`;
  return `Warning: Ignoring extra certs from \`${file}\`, load failed: ${reason}\n`;
}

/**
 * Takes over the extra CA file bin/tsetcdctl.cjs handed on: NODE_EXTRA_CA_CERTS is set again in
 * `env` for child processes, and Node's warning for a file that cannot be opened is printed as
 * Node prints it at start. Nothing is taken over when Node itself was given the variable.
 */
export function adoptDeferredExtraCaCerts(env: NodeJS.ProcessEnv, warn: (text: string) => void): void {
  const deferred = env[deferredExtraCaCertsVariable];
  if (deferred === undefined) return;
  delete env[deferredExtraCaCertsVariable];
  if (env.NODE_EXTRA_CA_CERTS !== undefined) return;
  env.NODE_EXTRA_CA_CERTS = deferred;
  // Node passes over an empty value.
  if (deferred === '') return;
  try {
    // Reading the file costs a fraction of a millisecond; parsing its certificates is what is put off.
    deferredPem = readFileSync(deferred);
  } catch (error) {
    // Node opens a directory without complaint and finds no certificate in it.
    if ((error as NodeJS.ErrnoException).code !== 'EISDIR') warn(openWarning(deferred, error as NodeJS.ErrnoException));
  }
}

/**
 * Makes `tlsModule` give every context made without `ca` the deferred file's certificates on top
 * of the default roots: the one hook every TLS client in the process (this client's unary calls,
 * grpc-js, fetch) goes through, as Node's own start-up store would have been. Idempotent; does
 * nothing when no file was deferred. Returns `tlsModule`.
 */
export function trustDeferredExtraCaCerts(tlsModule: typeof Tls): typeof Tls {
  const pem = deferredPem;
  if (pem === undefined || patchedTls === tlsModule) return tlsModule;
  const createWithDefaultRoots = tlsModule.createSecureContext;
  tlsModule.createSecureContext = function createSecureContext(options?: Tls.SecureContextOptions) {
    const context = createWithDefaultRoots.call(this, options);
    // Node gives the default roots to a context whose `ca` is any false value.
    if (!options?.ca) {
      // addCACert on a context holding the shared default store copies that store first, as
      // Node does, so the certificates join the default roots of this context only.
      (context as unknown as { context: { addCACert(pem: Buffer): void } }).context.addCACert(pem);
    }
    return context;
  };
  patchedTls = tlsModule;
  return tlsModule;
}
