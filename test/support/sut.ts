/**
 * Which member binaries the tests run: real etcd as the reference and the system under test,
 * tsetcd by default. TSETCD_CMD overrides the latter (e.g. TSETCD_CMD=/usr/bin/etcd checks the
 * harness itself by comparing etcd with etcd).
 */
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

/** Real etcd 3.4, the reference implementation. */
export function etcdCommand(): MemberCommand {
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
