/**
 * A one-shot get, put or del loads neither gRPC's libraries, protobufjs nor the snapshot tools' lmdb: they cost more start-up
 * time than the whole call (bench/ctl-startup.ts measures it). Nor does it load the Node modules
 * only other commands use, which Node compiles on first load (those outside its start-up snapshot).
 * Each command runs as users start it, `node bin/tsetcdctl.cjs`, in a fresh process against a real
 * etcd, and reports the file tsetcdctl ran from (the build's one-file bundle), the CommonJS modules
 * it loaded (those libraries are CommonJS) and Node's own modules (process.moduleLoadList); `-w
 * json` needs protobufjs's reflection, which shows the check sees a loaded library.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import {
  bundleFiles,
  compileBundle,
  isFresh,
  readManifest,
  runBundle,
  stampsFresh,
  type FileStamp,
} from '../../ctl/bundle-loader.cjs';
import { packageRoot } from '../../src/lib/paths.js';
import { runCommand } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { etcdCommand, tsetcdctlBinPath } from '../support/sut.js';

const loaderUrl = pathToFileURL(join(packageRoot(), 'dist', 'ctl', 'bundle-loader.cjs')).href;
/**
 * Loaded by --import before bin/tsetcdctl.cjs, so it shares the bin's instance of the loader; as the
 * process exits (run() ends with process.exit, as etcdctl does) it prints, after a marker, the file
 * tsetcdctl ran from, the CommonJS modules loaded and Node's own modules as node:<name>, one per line.
 */
const preload = `import * as loader from ${JSON.stringify(loaderUrl)};
import { createRequire } from 'node:module';
import { writeSync } from 'node:fs';
const { cache } = createRequire(${JSON.stringify(loaderUrl)});
const builtins = () => process.moduleLoadList.filter((entry) => entry.startsWith('NativeModule ')).map((entry) => 'node:' + entry.slice(13));
process.on('exit', () => writeSync(1, '--- loaded\\n' + loader.ctlLoadedFrom() + '\\n' + Object.keys(cache).concat(builtins()).join('\\n') + '\\n'));`;
const heavyLibrary = /node_modules\/(@grpc\/grpc-js|@grpc\/proto-loader|protobufjs|lmdb|msgpackr)\//;
/**
 * Node's modules a one-shot get, put or del has no use for, each a millisecond or two to compile:
 * perf_hooks and its internal/perf modules come with the global `performance`, which tsetcdctl
 * reads no clock through (ctl/monotonic-clock.ts).
 */
const unusedBuiltin =
  /^node:(perf_hooks|internal\/perf\/(performance|usertiming|nodetiming|timerify)|dgram|os|dns|dns\/promises|tls|crypto|child_process|http2|worker_threads|readline|zlib)$/;
const bundlePath = join(packageRoot(), 'dist', 'ctl', bundleFiles.bundle);

let member: Member | undefined;

before(async () => {
  member = await Member.start({ command: etcdCommand() });
});

after(async () => {
  await member?.stop();
});

/** What the command printed before the marker, the file it ran from and the heavy or unused modules it loaded. */
async function runAndList(args: readonly string[]): Promise<{ printed: string; ranFrom: string; heavy: string[] }> {
  const result = await runCommand(process.execPath, [
    '--import',
    `data:text/javascript,${encodeURIComponent(preload)}`,
    tsetcdctlBinPath,
    `--endpoints=${member?.clientUrl}`,
    ...args,
  ]);
  assert.equal(result.code, 0, result.stderr);
  const [printed = '', loaded] = result.stdout.split('--- loaded\n');
  assert.ok(loaded !== undefined, `no module list after the output: ${result.stdout}`);
  const [ranFrom = '', ...modules] = loaded.split('\n');
  return {
    printed,
    ranFrom,
    heavy: modules.filter((path) => heavyLibrary.test(path) || unusedBuiltin.test(path)),
  };
}

test('a one-shot put, get and del run from the bundle and load neither grpc-js, proto-loader, protobufjs, lmdb nor Node modules they do not use', async () => {
  // A bundle older than tsc's last build is passed over for dist/ctl/main.js: `npm run build` makes it anew.
  const ran = { ranFrom: bundlePath, heavy: [] };
  assert.deepEqual(await runAndList(['put', 'startup', 'value']), { printed: 'OK\n', ...ran });
  assert.deepEqual(await runAndList(['get', 'startup']), { printed: 'startup\nvalue\n', ...ran });
  assert.deepEqual(await runAndList(['del', 'startup']), { printed: '1\n', ...ran });
});

test('get -w json loads protobufjs for its reflection, and the check sees it', async () => {
  const { heavy } = await runAndList(['get', 'startup', '-w', 'json']);
  assert.ok(
    heavy.some((path) => path.includes('/protobufjs/')),
    `expected protobufjs among ${heavy.join(', ')}`,
  );
});

test("the bundle is passed over once tsc has built again after it, and kept under npm's one install time", () => {
  const manifest = readManifest();
  assert.ok(manifest !== undefined, 'expected the build to have made the bundle: run `npm run build`');
  assert.equal(isFresh(manifest), true);
  assert.equal(isFresh({ ...manifest, bundle: ['dist/ctl/absent.cjs', 0, 0] }), false);
  const { bundle, codeCache, buildInfo } = manifest;
  const at = (stamp: FileStamp, mtimeMs: number, size = stamp[1]): FileStamp => [stamp[0], size, mtimeMs];
  const recorded = [bundle, codeCache, buildInfo];
  // tsc emitted after the bundle build: its record is newer than the bundle.
  assert.equal(stampsFresh(recorded, [at(bundle, 1000), at(codeCache, 1000), at(buildInfo, 2000)]), false);
  // tsc emitted and its record happens to keep its size: still newer, so still passed over.
  assert.equal(stampsFresh(recorded, [at(bundle, 1000), at(codeCache, 1000), at(buildInfo, 1001)]), false);
  // A file rewritten to another size.
  assert.equal(
    stampsFresh(recorded, [at(bundle, 1000), at(codeCache, 1000, codeCache[1] + 1), at(buildInfo, 900)]),
    false,
  );
  // An npm install: every file has the same modification time, none the recorded one.
  const npmTime = Date.UTC(1985, 9, 26, 8, 15);
  assert.equal(stampsFresh(recorded, [at(bundle, npmTime), at(codeCache, npmTime), at(buildInfo, npmTime)]), true);
});

test("the bundle's code cache is one V8 takes, made after a put and a get ran", () => {
  const source = readFileSync(bundlePath, 'utf8');
  const cache = readFileSync(join(packageRoot(), 'dist', 'ctl', bundleFiles.codeCache));
  assert.equal(compileBundle(source, cache).cachedDataRejected, false, "expected V8 to take the build's code cache");
  // A cache taken after the top level alone holds none of the functions a command calls; the
  // build's holds those of put, get and del too (ctl/bundle-warm-up.ts), so it is well larger.
  const topLevelOnly = compileBundle(source, undefined);
  runBundle(topLevelOnly);
  const topLevelBytes = topLevelOnly.createCachedData().length;
  assert.ok(
    cache.length > topLevelBytes * 1.5,
    `expected the code cache (${cache.length} bytes) to hold more than the top level's ${topLevelBytes} bytes`,
  );
});
