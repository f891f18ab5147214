/**
 * Makes the member thread's one-file bundle after tsc: dist/actors/member/worker.js and every
 * compiled module it reaches, in one CommonJS file beside it (libraries and native addons stay in
 * node_modules), a V8 code cache of it, and a manifest of what it was made after. The thread's
 * entry (worker-entry.cts) runs the bundle only while it is fresher than tsc's last build, as
 * tsetcdctl's loader does (ctl/bundle-loader.cts; the freshness rule is src/lib/bundle-stamps.cts).
 *
 *   node dist/actors/member/worker-bundle-build.js
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertNoLibraryImports, compiledModulesBundleOptions, esbuildForBundle } from '../../src/lib/bundle-build.js';
import { writeBundleManifest } from '../../src/lib/bundle-stamps.cjs';
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { compileMemberBundle, memberBundleFiles, memberStartV8Flags } from './worker-entry.cjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const packageRoot = join(here, '..', '..', '..');

/**
 * A module's own import.meta.url in the bundle: its path from the bundle's directory, resolved
 * against the bundle's URL at run time, so files found beside a module (thread entries, the
 * package root) are found as from the compiled module itself.
 */
function ownUrlExpression(modulePath: string): string {
  const fromBundle = relative(here, modulePath).split('\\').join('/');
  return `new URL(${JSON.stringify(fromBundle)}, __memberBundleFileUrl).href`;
}

/** What the bundle build rewrites in a compiled module, each rewrite checked to have happened. */
function rewriteModule(path: string, source: string): string {
  let rewritten = source.replaceAll('import.meta.url', ownUrlExpression(path));
  // The failpoint registry is loaded with a top-level await in ESM, which CommonJS has no way to
  // express; in the bundle the registry is a module of the bundle and loads synchronously.
  if (path.endsWith(join('actors', 'shared', 'failpoints.js'))) {
    const awaited = "await import('./failpoint-registry.js')";
    if (!rewritten.includes(awaited)) throw new Error(`expected ${path} to load its registry with ${awaited}`);
    rewritten = rewritten.replace(awaited, "require('./failpoint-registry.js')");
  }
  // A script compiled with a code cache has no import() callback of its own on Node 20 (and the
  // experimental one prints a warning): libraries only importable as ESM are imported by the
  // thread's entry, a module Node loaded itself, on the bundle's behalf.
  rewritten = rewritten.replace(/\bimport\((['"])([^'"./][^'"]*)\1\)/g, '__memberImport($1$2$1)');
  if (rewritten.includes('import.meta')) throw new Error(`expected no other use of import.meta in ${path}`);
  return rewritten;
}

/** How long the warm-up thread gets to load the member's modules before its code cache is taken. */
const warmUpWaitMs = 30_000;

/**
 * The bundle's code cache, taken in a thread that ran the bundle's top level and loaded the
 * modules worker.js imports before its data arrives. V8 compiles a function when it is first
 * called and a code cache holds only what was compiled by then; the bundle's modules set
 * themselves up inside functions (esbuild's wrappers of lazily loaded modules), so a cache of the
 * top level alone would leave most of a start to be compiled from source. The thread never gets
 * its data, so no member starts; it is ended once the cache is taken.
 */
async function warmCodeCache(): Promise<Buffer> {
  // V8 takes a code cache only under the flags it was made with, and bin/tsetcd.js starts a
  // member with the optimizing compiler off (until it serves clients), so the cache is made so too.
  setFlagsFromString(memberStartV8Flags);
  const entryPath = join(here, 'worker-entry.cjs');
  const warmUp = `
    const { parentPort } = require('node:worker_threads');
    const { readFileSync } = require('node:fs');
    const entry = require(${JSON.stringify(entryPath)});
    const script = entry.compileMemberBundle(readFileSync(${JSON.stringify(join(here, memberBundleFiles.bundle))}, 'utf8'), undefined);
    entry.runMemberBundle(script);
    // worker.js imports the member's heavier modules as it starts; they settle within a few turns.
    setTimeout(() => parentPort.postMessage(script.createCachedData()), 500);`;
  const worker = new Worker(warmUp, { eval: true, workerData: null });
  try {
    const cache = await new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the member bundle warm-up took too long')), warmUpWaitMs);
      worker.once('message', (data: Uint8Array) => {
        clearTimeout(timer);
        resolve(data);
      });
      worker.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    return Buffer.from(cache);
  } finally {
    await worker.terminate();
  }
}

/** Builds the bundle, then its code cache, then the manifest (last: it vouches for both). */
async function main(): Promise<void> {
  const manifestPath = join(here, memberBundleFiles.manifest);
  const esbuild = await esbuildForBundle(
    manifestPath,
    'member bundle: esbuild is not installed; member threads run from dist/actors/member/worker.js',
  );
  if (esbuild === undefined) return;
  const bundlePath = join(here, memberBundleFiles.bundle);
  const distRoot = join(packageRoot, 'dist');
  const result = await esbuild.build({
    ...compiledModulesBundleOptions,
    entryPoints: [join(here, 'worker.js')],
    outfile: bundlePath,
    // Names are kept: a member's errors and stack traces are read by operators.
    minifyWhitespace: true,
    minifySyntax: true,
    banner: { js: 'const __memberBundleFileUrl = require("node:url").pathToFileURL(__filename).href;' },
    plugins: [
      {
        name: 'own-import-meta-url',
        setup(build) {
          // comlink's Node adapter is published as ESM only; bundled, it needs no require of an ES module.
          build.onResolve({ filter: /^comlink\/dist\/esm\/node-adapter\.mjs$/ }, (args) => ({
            path: createRequire(args.importer).resolve(args.path),
          }));
          build.onLoad({ filter: /\.js$/ }, (args) => {
            if (!args.path.startsWith(distRoot)) return undefined;
            return { contents: rewriteModule(args.path, readFileSync(args.path, 'utf8')), loader: 'js' };
          });
        },
      },
    ],
  });
  // Every import() left must be of the bundle's own modules, which esbuild turns into calls.
  assertNoLibraryImports(result.metafile, 'member bundle');
  let cache: Buffer;
  try {
    cache = await warmCodeCache();
  } catch (error) {
    // An install must not fail for the warm-up's sake: the cache then holds the top level only.
    console.warn(
      `member bundle: the warm-up run failed, so the code cache covers the top level only: ${String(error)}`,
    );
    cache = compileMemberBundle(readFileSync(bundlePath, 'utf8'), undefined).createCachedData();
  }
  writeFileSync(join(here, memberBundleFiles.codeCache), cache);
  writeBundleManifest(manifestPath, bundlePath, join(here, memberBundleFiles.codeCache));
}

await main();
