/**
 * etcdctl's security flags: --cacert, --cert, --key, --insecure-transport and
 * --insecure-skip-tls-verify decide how each connection is secured, as etcdctl's newClientCfg and
 * clientv3's per-scheme credentials do; --user and --password (or a password prompt) decide whom
 * the connection authenticates as.
 */
import type * as grpc from '@grpc/grpc-js';
import { loadCaBundle, loadKeyPair } from '../src/config/tls-files.js';
import { discoveryServerName } from './discovery.js';
import { grpcJs, nodeChildProcess } from './lazy-modules.js';
import type { FlagValues } from './flags.js';
import { ExitCode, exitWithError, type Output } from './output.js';
import type { StdinReader } from './stdin.js';

/** The TLS settings etcdctl builds from its flags; undefined fields are Go's zero values. */
export interface ClientTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  skipVerify: boolean;
  /** The name every server's certificate is verified against, instead of the endpoint's host. */
  serverName?: string;
}

/** What a connection needs to be secured: the TLS settings (undefined means etcdctl's nil tls.Config). */
export interface ClientSecurity {
  tls: ClientTls | undefined;
}

export interface UserCredentials {
  username: string;
  password: string;
}

/** etcdctl's check that a TLS file flag, once given, is not empty. */
function fileFlag(flags: FlagValues, output: Output, name: 'cert' | 'key' | 'cacert'): string {
  const value = flags.string(name);
  if (value === '' && flags.changed.has(name))
    exitWithError(output, ExitCode.badArgs, `empty string is passed to --${name} option`);
  return value;
}

/** etcdctl's newClientCfg: TLS as soon as one file flag is set, or an empty TLS config without --insecure-transport. */
export function clientSecurity(flags: FlagValues, output: Output): ClientSecurity {
  const cert = fileFlag(flags, output, 'cert');
  const key = fileFlag(flags, output, 'key');
  const cacert = fileFlag(flags, output, 'cacert');
  let tls: ClientTls | undefined;
  try {
    if (cert !== '' || key !== '' || cacert !== '') {
      tls = { skipVerify: false };
      if (cert !== '' || key !== '') Object.assign(tls, loadKeyPair(cert, key));
      if (cacert !== '') tls.ca = loadCaBundle(cacert);
    }
  } catch (error) {
    exitWithError(output, ExitCode.badArgs, (error as Error).message);
  }
  // --discovery-srv without --insecure-discovery verifies servers as the domain, which alone turns TLS on.
  const serverName = discoveryServerName(flags);
  if (serverName !== undefined) tls = { ...(tls ?? { skipVerify: false }), serverName };
  if (tls === undefined && !flags.bool('insecure-transport')) tls = { skipVerify: false };
  if (tls !== undefined) tls.skipVerify = flags.bool('insecure-skip-tls-verify');
  return { tls };
}

/**
 * clientv3's choice per endpoint scheme: http:// is always plaintext; https:// and unixs:// use
 * the TLS settings or, without any, a verifying default; unix:// and bare host:port use the
 * settings as given (plaintext when there are none).
 */
export function tlsForEndpoint(security: ClientSecurity, endpoint: string): ClientTls | undefined {
  const scheme = /^([a-z]+):\/\//.exec(endpoint.trim())?.[1];
  if (scheme === 'http') return undefined;
  if (scheme === 'https' || scheme === 'unixs') return security.tls ?? { skipVerify: false };
  if (scheme === undefined || scheme === 'unix') return security.tls;
  return undefined;
}

/** gRPC channel credentials for one set of TLS settings (plaintext when undefined). */
export function channelCredentials(tls: ClientTls | undefined): grpc.ChannelCredentials {
  const { credentials } = grpcJs();
  if (tls === undefined) return credentials.createInsecure();
  const verify: grpc.VerifyOptions = tls.skipVerify
    ? { rejectUnauthorized: false, checkServerIdentity: () => undefined }
    : {};
  return credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null, verify);
}

/** speakeasy's prompt: `prompt` on stdout, echo off with stty on the same descriptors, one line read. */
export async function askPassword(output: Output, stdin: StdinReader, prompt = 'Password: '): Promise<string> {
  output.out(prompt);
  const { spawnSync } = nodeChildProcess();
  const echoOff = spawnSync('/bin/stty', ['-echo'], { argv0: 'stty', stdio: 'inherit' });
  if (echoOff.error !== undefined) {
    exitWithError(
      output,
      ExitCode.error,
      `failed turning off console echo for password entry:\n\t${echoOff.error.message}`,
    );
  }
  try {
    const line = (await stdin.readLine()) ?? (await stdin.readAll()).toString('utf8');
    return line.replace(/\n$/, '').replace(/\r$/, '').trim();
  } finally {
    spawnSync('/bin/stty', ['echo'], { argv0: 'stty', stdio: 'inherit' });
    output.out('\n');
  }
}

/** etcdctl's authCfgFromCmd: `name:password`, `name` with --password, or `name` and a prompt. */
export async function userCredentials(
  flags: FlagValues,
  output: Output,
  stdin: StdinReader,
): Promise<UserCredentials | undefined> {
  const user = flags.string('user');
  const password = flags.string('password');
  if (user === '') return undefined;
  if (password !== '') return { username: user, password };
  const colon = user.indexOf(':');
  if (colon >= 0) return { username: user.slice(0, colon), password: user.slice(colon + 1) };
  return { username: user, password: await askPassword(output, stdin) };
}
