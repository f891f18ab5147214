/**
 * NODE_EXTRA_CA_CERTS works for tsetcdctl as it does for any Node program, however it is started:
 * as a program (npm's bin link, npx), where bin/tsetcdctl.cjs hands the file over and tsetcdctl
 * adds its certificates itself (ctl/extra-ca-certs.ts), and as `node bin/tsetcdctl.cjs`, where
 * Node reads it. A real etcd serves https with a certificate from a CA that only the variable
 * names: an https endpoint without --cacert is accepted with it and refused without it, --cacert
 * still replaces every default root, and the commands tsetcdctl runs see the variable as given.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TlsConfig } from '../../src/config/config.js';
import { packageRoot } from '../../src/lib/paths.js';
import { runCommand, type CommandResult } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { etcdCommand, tsetcdctlBinPath } from '../support/sut.js';
import { makeCertificates, tlsSkipReason, type TestCertificates } from '../support/tls.js';

const skip = tlsSkipReason({ command: etcdCommand() });

let certs: TestCertificates | undefined;
let server: TlsConfig;
let member: Member | undefined;
let linkDir: string | undefined;

/**
 * The ways users start tsetcdctl: the command line before tsetcdctl's own arguments, and the
 * directory it runs in (npx finds tsetcdctl in that project's node_modules/.bin, as in a project
 * that installed tsetcd).
 */
const starts: ReadonlyArray<{
  readonly name: string;
  readonly command: () => readonly string[];
  readonly cwd: () => string;
}> = [
  // What npm's bin link is: a symbolic link to bin/tsetcdctl.cjs, run through its #! line.
  { name: 'the bin link', command: () => [join(linkDir ?? '', 'tsetcdctl')], cwd: packageRoot },
  { name: 'npx', command: () => ['npx', '--no-install', 'tsetcdctl'], cwd: () => linkDir ?? '' },
  { name: 'node bin/tsetcdctl.cjs', command: () => [process.execPath, tsetcdctlBinPath], cwd: packageRoot },
];

/**
 * Runs tsetcdctl as `start` does with NODE_EXTRA_CA_CERTS set to `extraCa` (unset when undefined).
 * grpc-js trusts GRPC_DEFAULT_SSL_ROOTS_FILE_PATH instead of the default roots when it is set (this
 * sandbox sets it), so it is left out for the streams to show what Node's default roots give.
 */
function run(start: (typeof starts)[number], extraCa: string | undefined, args: readonly string[]) {
  const [command = '', ...prefix] = start.command();
  return runCommand(command, [...prefix, ...args], {
    cwd: start.cwd(),
    // npm's update check (npx runs it outside CI) would fetch from the registry with the test's CA
    // as its only extra root, and wait out its retries.
    env: {
      NODE_EXTRA_CA_CERTS: extraCa,
      GRPC_DEFAULT_SSL_ROOTS_FILE_PATH: undefined,
      npm_config_update_notifier: 'false',
    },
  });
}

function outcome(result: CommandResult): Pick<CommandResult, 'code' | 'stdout' | 'stderr'> {
  return { code: result.code, stdout: result.stdout, stderr: result.stderr };
}

before(async () => {
  if (skip !== false) return;
  certs = makeCertificates();
  server = certs.member('server');
  // Only the server's certificate: etcd 3.4 asks clients for theirs once it is given a trusted CA.
  member = await Member.start({
    command: etcdCommand(),
    clientTls: 'https only',
    extraFlags: ['--cert-file', server.certFile, '--key-file', server.keyFile],
  });
  linkDir = mkdtempSync(join(tmpdir(), 'tsetcdctl-bin-'));
  symlinkSync(tsetcdctlBinPath, join(linkDir, 'tsetcdctl'));
  mkdirSync(join(linkDir, 'node_modules', '.bin'), { recursive: true });
  symlinkSync(tsetcdctlBinPath, join(linkDir, 'node_modules', '.bin', 'tsetcdctl'));
});

after(async () => {
  await member?.destroy();
  certs?.remove();
  if (linkDir !== undefined) rmSync(linkDir, { recursive: true, force: true });
});

describe('NODE_EXTRA_CA_CERTS', { skip }, () => {
  const at = () => [`--endpoints=${member?.clientUrl}`, '--dial-timeout=1s', '--command-timeout=2s'];

  for (const start of starts) {
    test(`a server certificate from a CA it names is accepted over https through ${start.name}, and refused without it`, async () => {
      const key = `extra-ca-${start.name}`;
      assert.deepEqual(outcome(await run(start, server.trustedCaFile, [...at(), 'put', key, 'v'])), {
        code: 0,
        stdout: 'OK\n',
        stderr: '',
      });
      assert.deepEqual(outcome(await run(start, server.trustedCaFile, [...at(), 'get', key])), {
        code: 0,
        stdout: `${key}\nv\n`,
        stderr: '',
      });
      assert.deepEqual(outcome(await run(start, undefined, [...at(), 'get', key])), {
        code: 1,
        stdout: '',
        stderr: 'Error: context deadline exceeded\n',
      });
    });
  }

  test('--cacert replaces the default roots and the extra CA with them, as Node does', async () => {
    const otherCa = certs?.member('client', 'otherCa').trustedCaFile ?? '';
    const refused = await run(starts[0] as (typeof starts)[number], server.trustedCaFile, [
      ...at(),
      '--cacert',
      otherCa,
      'get',
      'x',
    ]);
    assert.deepEqual(outcome(refused), { code: 1, stdout: '', stderr: 'Error: context deadline exceeded\n' });
  });

  test('a stream (lock through grpc-js) trusts the extra CA too, and the command it runs sees the variable as given', async () => {
    const script =
      'echo "NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS TSETCDCTL_EXTRA_CA_CERTS=${TSETCDCTL_EXTRA_CA_CERTS-unset}"';
    for (const start of starts.filter((item) => item.name !== 'npx')) {
      const locked = await run(start, server.trustedCaFile, [...at(), 'lock', 'extra-ca', '--', 'sh', '-c', script]);
      assert.deepEqual(outcome(locked), {
        code: 0,
        stdout: `NODE_EXTRA_CA_CERTS=${server.trustedCaFile} TSETCDCTL_EXTRA_CA_CERTS=unset\n`,
        stderr: '',
      });
    }
  });

  test("a file that cannot be opened draws Node's own warning, and the command runs on", async () => {
    const absent = join(certs?.dir ?? '', 'absent.crt');
    const node = await runCommand(process.execPath, ['-e', '0'], { env: { NODE_EXTRA_CA_CERTS: absent } });
    assert.match(node.stderr, /^Warning: Ignoring extra certs from `.*absent\.crt`, load failed: .*\n$/);
    for (const start of starts.filter((item) => item.name !== 'npx')) {
      assert.deepEqual(outcome(await run(start, absent, ['version'])), {
        code: 0,
        stdout: 'etcdctl version: 3.4.23\nAPI version: 3.4\n',
        stderr: node.stderr,
      });
    }
  });
});
