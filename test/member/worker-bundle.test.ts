/**
 * A member's thread runs from the one-file bundle the build makes (actors/member/worker-entry.cts)
 * while it is fresh, and from the compiled ESM modules when it is older than tsc's last build or
 * gone. Each start is a real member process under `node --cpu-prof`: the profile Node writes for
 * each thread as it ends names the scripts that ran in it, so the test sees which code the member
 * thread ran without any hook in the product. Both ways the member must serve a put and a get.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { compileMemberBundle, memberBundleFiles, memberStartV8Flags } from '../../actors/member/worker-entry.cjs';
import { packageRoot } from '../../src/lib/paths.js';
import { etcdctlOk } from '../support/etcdctl.js';
import { Member } from '../support/member.js';

const memberDist = join('dist', 'actors', 'member');
const scratch = mkdtempSync(join(tmpdir(), 'tsetcd-worker-bundle-'));

after(() => rmSync(scratch, { recursive: true, force: true }));

/** The project's scripts (paths below dist/) each thread ran, one list per thread's profile. */
function scriptsPerThread(profileDir: string): string[][] {
  return readdirSync(profileDir)
    .filter((name) => name.endsWith('.cpuprofile'))
    .map((name) => {
      const profile = JSON.parse(readFileSync(join(profileDir, name), 'utf8')) as {
        nodes: { callFrame: { url: string } }[];
      };
      const urls = new Set(profile.nodes.map((node) => node.callFrame.url));
      return [...urls]
        .filter((url) => url.includes('/dist/') && !url.includes('/node_modules/'))
        .map((url) => url.slice(url.indexOf('/dist/') + 1));
    });
}

/** Starts a member from the tree at `root`, puts and gets a key, stops it: the scripts its member thread ran. */
async function memberThreadScripts(root: string, label: string): Promise<string[]> {
  const profileDir = join(scratch, `profiles-${label}`);
  const member = await Member.start({
    command: {
      label: 'tsetcd',
      command: process.execPath,
      args: ['--cpu-prof', '--cpu-prof-dir', profileDir, join(root, 'bin', 'tsetcd.js')],
    },
  });
  try {
    assert.equal(await etcdctlOk(member, ['put', 'bundle', label]), 'OK\n');
    assert.equal(await etcdctlOk(member, ['get', 'bundle', '--print-value-only']), `${label}\n`);
  } finally {
    await member.stop();
  }
  const entry = `${memberDist}/worker-entry.cjs`;
  const memberThreads = scriptsPerThread(profileDir).filter((scripts) => scripts.includes(entry));
  assert.equal(memberThreads.length, 1, `expected one thread to have run ${entry}`);
  return memberThreads[0] ?? [];
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

test("a member thread runs from the build's bundle while it is fresh, and V8 takes the bundle's code cache", async () => {
  const bundleDir = join(packageRoot(), memberDist);
  const source = readFileSync(join(bundleDir, memberBundleFiles.bundle), 'utf8');
  const cache = readFileSync(join(bundleDir, memberBundleFiles.codeCache));
  // V8 takes a cache only under the flags it was made with: those bin/tsetcd.js starts a member under.
  const launcher = readFileSync(join(packageRoot(), 'bin', 'tsetcd.js'), 'utf8');
  assert.ok(
    launcher.includes(`setFlagsFromString('${memberStartV8Flags}')`),
    `expected bin/tsetcd.js to set ${memberStartV8Flags}`,
  );
  setFlagsFromString(memberStartV8Flags);
  assert.equal(
    compileMemberBundle(source, cache).cachedDataRejected,
    false,
    "expected V8 to take the build's code cache",
  );
  const scripts = await memberThreadScripts(packageRoot(), 'fresh');
  assert.ok(scripts.includes(bundle), `expected the member thread to run ${bundle}, saw ${scripts.join(', ')}`);
  assert.ok(!scripts.includes(compiledMember), `expected the member thread not to load ${compiledMember}`);
});

test("a bundle older than tsc's last build, or gone, is passed over for the compiled modules", async () => {
  const root = copyOfBuild();
  // tsc emitted after the bundle build: its record is newer than the bundle.
  const bundleTime = statSync(join(root, bundle)).mtime;
  const later = new Date(bundleTime.getTime() + 10_000);
  utimesSync(join(root, 'dist', '.tsbuildinfo'), later, later);
  const staleScripts = await memberThreadScripts(root, 'stale');
  assert.ok(staleScripts.includes(compiledMember), `expected ${compiledMember} to run, saw ${staleScripts.join(', ')}`);
  assert.ok(!staleScripts.includes(bundle), `expected the stale ${bundle} not to run`);
  // The bundle and its cache deleted, the manifest left behind.
  rmSync(join(root, bundle));
  rmSync(join(root, memberDist, memberBundleFiles.codeCache));
  utimesSync(join(root, 'dist', '.tsbuildinfo'), bundleTime, bundleTime);
  const goneScripts = await memberThreadScripts(root, 'gone');
  assert.ok(goneScripts.includes(compiledMember), `expected ${compiledMember} to run, saw ${goneScripts.join(', ')}`);
});
