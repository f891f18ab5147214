/**
 * A member's thread, the supervisor's main thread and the WAL thread run from the one-file bundles
 * the build makes (actors/member/worker-entry.cts, actors/supervisor/main-entry.cts,
 * actors/wal/thread-entry.cts) while they are fresh, and from the compiled ESM modules when they are older than tsc's last build or gone. Each start is a real
 * member process under `node --cpu-prof`: the profile Node writes for each thread as it ends names
 * the scripts that ran in it, so the test sees which code each thread ran without any hook in the
 * product. Both ways the member must serve a put and a get.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { memberBundleFiles, memberStartV8Flags } from '../../actors/member/worker-entry.cjs';
import { mainBundleFiles } from '../../actors/supervisor/main-entry.cjs';
import { walBundleFiles } from '../../actors/wal/thread-entry.cjs';
import { compileBundle, type BundleFiles } from '../../src/lib/bundle-run.cjs';
import { packageRoot } from '../../src/lib/paths.js';
import { etcdctlOk } from '../support/etcdctl.js';
import { Member } from '../support/member.js';

const memberDist = join('dist', 'actors', 'member');
const supervisorDist = join('dist', 'actors', 'supervisor');
const walDist = join('dist', 'actors', 'wal');
const scratch = mkdtempSync(join(tmpdir(), 'tsetcd-worker-bundle-'));

after(() => rmSync(scratch, { recursive: true, force: true }));

/** The project's scripts (paths below dist/) one thread ran, and whether it was the main thread. */
interface ThreadProfile {
  readonly mainThread: boolean;
  readonly scripts: string[];
}

/**
 * The profile of each thread. Node names a profile CPU.<date>.<time>.<pid>.<thread id>.<n>.cpuprofile,
 * and the main thread's id is 0.
 */
function threadProfiles(profileDir: string): ThreadProfile[] {
  return readdirSync(profileDir)
    .filter((name) => name.endsWith('.cpuprofile'))
    .map((name) => {
      const profile = JSON.parse(readFileSync(join(profileDir, name), 'utf8')) as {
        nodes: { callFrame: { url: string } }[];
      };
      const urls = new Set(profile.nodes.map((node) => node.callFrame.url));
      const scripts = [...urls]
        .filter((url) => url.includes('/dist/') && !url.includes('/node_modules/'))
        .map((url) => url.slice(url.indexOf('/dist/') + 1));
      return { mainThread: name.split('.')[4] === '0', scripts };
    });
}

/** The project's scripts the member thread and the main thread of a member process ran. */
interface ThreadScripts {
  /** The member thread's: it alone runs worker-entry.cjs. */
  readonly member: string[];
  readonly main: string[];
  /** Every thread's, the two above among them. */
  readonly all: string[][];
}

/** Starts a member from the tree at `root`, puts and gets a key, stops it: the scripts its threads ran. */
async function threadScripts(root: string, label: string): Promise<ThreadScripts> {
  const profileDir = join(scratch, `profiles-${label}`);
  const member = await Member.start({
    command: {
      label: 'tsetcd',
      command: process.execPath,
      // Sampled every 250 us rather than every 1 ms, so that a module's short top level is seen.
      args: ['--cpu-prof', '--cpu-prof-interval', '250', '--cpu-prof-dir', profileDir, join(root, 'bin', 'tsetcd.js')],
    },
  });
  try {
    assert.equal(await etcdctlOk(member, ['put', 'bundle', label]), 'OK\n');
    assert.equal(await etcdctlOk(member, ['get', 'bundle', '--print-value-only']), `${label}\n`);
  } finally {
    await member.stop();
  }
  const profiles = threadProfiles(profileDir);
  const entry = `${memberDist}/worker-entry.cjs`;
  const memberThreads = profiles.filter((profile) => profile.scripts.includes(entry));
  assert.equal(memberThreads.length, 1, `expected one thread to have run ${entry}`);
  const mainThreads = profiles.filter((profile) => profile.mainThread);
  assert.equal(mainThreads.length, 1, 'expected one profile of the main thread');
  return {
    member: memberThreads[0]?.scripts ?? [],
    main: mainThreads[0]?.scripts ?? [],
    all: profiles.map((profile) => profile.scripts),
  };
}

/** A copy of the built package (bin, dist, the files a member reads beside them) to make stale. */
function copyOfBuild(): string {
  const root = join(scratch, 'package');
  for (const part of ['bin', 'dist', 'schemas', 'package.json', join('src', 'api', 'proto')]) {
    cpSync(join(packageRoot(), part), join(root, part), { recursive: true });
  }
  symlinkSync(join(packageRoot(), 'node_modules'), join(root, 'node_modules'));
  return root;
}

const bundle = `${memberDist}/${memberBundleFiles.bundle}`;
const compiledMember = `${memberDist}/member.js`;
const mainBundle = `${supervisorDist}/${mainBundleFiles.bundle}`;
const compiledMain = `${supervisorDist}/main.js`;
/** The compiled modules bin/tsetcd.js loads itself, ahead of the supervisor's: the member thread's early start. */
const loadedByLauncher = [`${supervisorDist}/member-prestart.js`, `${supervisorDist}/thread-start.js`];

/** Throws unless the main thread ran the supervisor from its bundle and no compiled module of the bundle's. */
function assertMainFromBundle(scripts: string[]): void {
  assert.ok(scripts.includes(mainBundle), `expected the main thread to run ${mainBundle}, saw ${scripts.join(', ')}`);
  const compiled = scripts.filter((script) => script.endsWith('.js') && !loadedByLauncher.includes(script));
  assert.deepEqual(compiled, [], 'expected the main thread to run no compiled module the bundle holds');
}

const walBundle = `${walDist}/${walBundleFiles.bundle}`;
const compiledWalThread = `${walDist}/thread.js`;

/** Throws unless one thread ran `expected` and none ran `unexpected` (the WAL thread's two forms). */
function assertOneThreadRan(threads: string[][], expected: string, unexpected: string): void {
  const running = threads.filter((scripts) => scripts.includes(expected));
  assert.equal(running.length, 1, `expected one thread to run ${expected}, saw ${threads.join(' | ')}`);
  assert.ok(!threads.some((scripts) => scripts.includes(unexpected)), `expected no thread to run ${unexpected}`);
}

/** Throws unless the main thread ran the compiled supervisor and not its bundle. */
function assertMainFromModules(scripts: string[]): void {
  assert.ok(scripts.includes(compiledMain), `expected ${compiledMain} to run, saw ${scripts.join(', ')}`);
  assert.ok(!scripts.includes(mainBundle), `expected ${mainBundle} not to run`);
}

test("the member, main and WAL threads run from the build's bundles while they are fresh, and V8 takes their code caches", async () => {
  // V8 takes a cache only under the flags it was made with: those bin/tsetcd.js starts a member under.
  const launcher = readFileSync(join(packageRoot(), 'bin', 'tsetcd.js'), 'utf8');
  assert.ok(
    launcher.includes(`setFlagsFromString('${memberStartV8Flags}')`),
    `expected bin/tsetcd.js to set ${memberStartV8Flags}`,
  );
  setFlagsFromString(memberStartV8Flags);
  const built: [string, BundleFiles][] = [
    [memberDist, memberBundleFiles],
    [supervisorDist, mainBundleFiles],
    [walDist, walBundleFiles],
  ];
  for (const [dir, files] of built) {
    const bundlePath = join(packageRoot(), dir, files.bundle);
    const cache = readFileSync(join(packageRoot(), dir, files.codeCache));
    const script = compileBundle(bundlePath, readFileSync(bundlePath, 'utf8'), cache);
    assert.equal(script.cachedDataRejected, false, `expected V8 to take the code cache of ${bundlePath}`);
  }
  const { member: scripts, main, all } = await threadScripts(packageRoot(), 'fresh');
  assert.ok(scripts.includes(bundle), `expected the member thread to run ${bundle}, saw ${scripts.join(', ')}`);
  assert.ok(!scripts.includes(compiledMember), `expected the member thread not to load ${compiledMember}`);
  assertMainFromBundle(main);
  assertOneThreadRan(all, walBundle, compiledWalThread);
});

test("bundles older than tsc's last build, or gone, are passed over for the compiled modules", async () => {
  const root = copyOfBuild();
  // tsc emitted after the bundle build: its record is newer than the bundle.
  const bundleTime = statSync(join(root, bundle)).mtime;
  const newestBundleMs = Math.max(
    bundleTime.getTime(),
    statSync(join(root, mainBundle)).mtimeMs,
    statSync(join(root, walBundle)).mtimeMs,
  );
  const later = new Date(newestBundleMs + 10_000);
  utimesSync(join(root, 'dist', '.tsbuildinfo'), later, later);
  const stale = await threadScripts(root, 'stale');
  assert.ok(stale.member.includes(compiledMember), `expected ${compiledMember} to run, saw ${stale.member.join(', ')}`);
  assert.ok(!stale.member.includes(bundle), `expected the stale ${bundle} not to run`);
  assertMainFromModules(stale.main);
  assertOneThreadRan(stale.all, compiledWalThread, walBundle);
  // The bundles and their caches deleted, the manifests left behind.
  rmSync(join(root, bundle));
  rmSync(join(root, memberDist, memberBundleFiles.codeCache));
  rmSync(join(root, mainBundle));
  rmSync(join(root, supervisorDist, mainBundleFiles.codeCache));
  rmSync(join(root, walBundle));
  rmSync(join(root, walDist, walBundleFiles.codeCache));
  utimesSync(join(root, 'dist', '.tsbuildinfo'), bundleTime, bundleTime);
  const gone = await threadScripts(root, 'gone');
  assert.ok(gone.member.includes(compiledMember), `expected ${compiledMember} to run, saw ${gone.member.join(', ')}`);
  assertMainFromModules(gone.main);
  assertOneThreadRan(gone.all, compiledWalThread, walBundle);
});
