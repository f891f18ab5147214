/**
 * A one-shot get, put or del loads neither gRPC's libraries nor protobufjs: they cost more start-up
 * time than the whole call (bench/ctl-startup.ts measures it). Each command runs in a fresh Node
 * process against a real etcd and reports the CommonJS modules it loaded (those libraries are
 * CommonJS); `-w json` needs protobufjs's reflection, which shows the check sees a loaded library.
 */
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { runCommand } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { etcdCommand } from '../support/sut.js';

const compiledMain = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'ctl', 'main.js');
/**
 * Runs tsetcdctl in this process and, as it exits (run() ends with process.exit, as etcdctl does),
 * prints the CommonJS modules loaded, one per line, after a marker.
 */
const script = `process.on('exit', () => require('node:fs').writeSync(1, '--- loaded\\n' + Object.keys(require.cache).join('\\n') + '\\n'));
import(${JSON.stringify(compiledMain)}).then((m) => m.run(process.argv.slice(1)));`;
const heavyLibrary = /node_modules\/(@grpc\/grpc-js|@grpc\/proto-loader|protobufjs)\//;

let member: Member | undefined;

before(async () => {
  member = await Member.start({ command: etcdCommand() });
});

after(async () => {
  await member?.stop();
});

/** What the command printed before the marker, and the heavy libraries it loaded. */
async function runAndList(args: readonly string[]): Promise<{ printed: string; heavy: string[] }> {
  const result = await runCommand(process.execPath, ['-e', script, '--', `--endpoints=${member?.clientUrl}`, ...args]);
  assert.equal(result.code, 0, result.stderr);
  const [printed = '', loaded] = result.stdout.split('--- loaded\n');
  assert.ok(loaded !== undefined, `no module list after the output: ${result.stdout}`);
  return { printed, heavy: loaded.split('\n').filter((path) => heavyLibrary.test(path)) };
}

test('a one-shot put, get and del load neither grpc-js, proto-loader nor protobufjs', async () => {
  assert.deepEqual(await runAndList(['put', 'startup', 'value']), { printed: 'OK\n', heavy: [] });
  assert.deepEqual(await runAndList(['get', 'startup']), { printed: 'startup\nvalue\n', heavy: [] });
  assert.deepEqual(await runAndList(['del', 'startup']), { printed: '1\n', heavy: [] });
});

test('get -w json loads protobufjs for its reflection, and the check sees it', async () => {
  const { heavy } = await runAndList(['get', 'startup', '-w', 'json']);
  assert.ok(
    heavy.some((path) => path.includes('/protobufjs/')),
    `expected protobufjs among ${heavy.join(', ')}`,
  );
});
