/**
 * Which member binaries the tests run: real etcd as the reference and the system under test,
 * tsetcd by default. TSETCD_CMD overrides the latter (e.g. TSETCD_CMD=/usr/bin/etcd checks the
 * harness itself by comparing etcd with etcd).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { packageRoot } from '../../src/lib/paths.js';

/** How to launch one kind of member; etcd-style flags are appended to `args`. */
export interface MemberCommand {
  /** Short name for messages and reports, e.g. "etcd" or "tsetcd". */
  readonly label: string;
  readonly command: string;
  readonly args: readonly string[];
}

/** The system under test, or why it cannot run here. */
export type SutLookup =
  | { readonly command: MemberCommand; readonly skipReason?: undefined }
  | { readonly command?: undefined; readonly skipReason: string };

export const etcdBinaryPath = '/usr/bin/etcd';
export const etcdctlBinaryPath = '/usr/bin/etcdctl';
/**
 * tsetcdctl as users start it (`node bin/tsetcdctl.cjs ...`): the one-file bundle when the build made
 * one and it is fresh, else the compiled modules (ctl/bundle-loader.cts).
 */
export const tsetcdctlBinPath = join(packageRoot(), 'bin', 'tsetcdctl.cjs');

/**
 * The etcd release every expectation against the reference was written for. Patch releases of the
 * same minor version keep etcd's output formats, error strings and exit codes, so any 3.4.x is
 * accepted; another minor version changes them (3.5 reorders JSON errors, adds fields), and a test
 * run against it would report etcd's changes as ours, so it fails instead of running.
 */
export const etcdReferenceVersion = '3.4.23';
const etcdReferenceSeries = etcdReferenceVersion.split('.').slice(0, 2).join('.');

/** The versions the reference binaries report. */
export interface EtcdReferenceVersions {
  readonly etcd: string;
  readonly etcdctl: string;
}

/** The versions in `etcd --version` and `etcdctl version` output; throws unless both are the reference's minor version. */
export function checkReferenceVersions(etcdOutput: string, etcdctlOutput: string): EtcdReferenceVersions {
  const etcd = /^etcd Version: (\S+)$/m.exec(etcdOutput)?.[1] ?? 'no version';
  const etcdctl = /^etcdctl version: (\S+)$/m.exec(etcdctlOutput)?.[1] ?? 'no version';
  for (const [binary, version] of [
    [etcdBinaryPath, etcd],
    [etcdctlBinaryPath, etcdctl],
  ] as const) {
    if (!version.startsWith(`${etcdReferenceSeries}.`))
      throw new Error(
        `${binary} reports ${version}, but the tests compare against etcd ${etcdReferenceSeries}.x (written against ${etcdReferenceVersion}); install etcd ${etcdReferenceVersion}`,
      );
  }
  return { etcd, etcdctl };
}

let referenceVersions: EtcdReferenceVersions | undefined;

/** The reference binaries' versions, read once per process; throws unless both are etcd 3.4.x. */
export function etcdReferenceVersions(): EtcdReferenceVersions {
  referenceVersions ??= checkReferenceVersions(
    execFileSync(etcdBinaryPath, ['--version'], { encoding: 'utf8' }),
    execFileSync(etcdctlBinaryPath, ['version'], { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' } }),
  );
  return referenceVersions;
}

/** Real etcd 3.4, the reference implementation; throws when the installed etcd is another version. */
export function etcdCommand(): MemberCommand {
  etcdReferenceVersions();
  return { label: 'etcd', command: etcdBinaryPath, args: [] };
}

/** The system under test from TSETCD_CMD, else `node <repo>/bin/tsetcd.js` when it is built. */
export function sutCommand(env: NodeJS.ProcessEnv = process.env): SutLookup {
  const override = env.TSETCD_CMD?.trim();
  if (override !== undefined && override !== '') return { command: commandFromString(override) };
  const root = packageRoot();
  const launcher = join(root, 'bin', 'tsetcd.js');
  const compiledMain = join(root, 'dist', 'actors', 'supervisor', 'main.js');
  // A missing build is an error, not a skip: these tests run from the build, so a launcher that
  // points at a moved entry point would otherwise skip every test that starts a member.
  for (const required of [launcher, compiledMain]) {
    if (!existsSync(required)) {
      throw new Error(
        `tsetcd is not built: ${required} is missing (run npm run build, or set TSETCD_CMD to test another binary)`,
      );
    }
  }
  return { command: { label: 'tsetcd', command: process.execPath, args: [launcher] } };
}

/** Splits a command string on whitespace; paths with spaces are not supported here. */
export function commandFromString(text: string): MemberCommand {
  const [command, ...args] = text.split(/\s+/);
  if (command === undefined) throw new Error(`expected a command in TSETCD_CMD, saw "${text}"`);
  const label =
    basename(command) === 'etcd'
      ? 'etcd-as-sut'
      : args.some((a) => a.endsWith('tsetcd.js'))
        ? 'tsetcd'
        : basename(command);
  return { label, command, args };
}
