/**
 * What tsetcdctl's and the threads' bundle builds share (ctl/bundle-build.ts,
 * actors/supervisor/thread-bundles-build.ts): esbuild, when
 * installed, run over compiled modules into one CommonJS file for Node 20 with the libraries left
 * in node_modules, and the check that no import() of a library is left in it; for a thread's
 * bundle, the rewrites that let its modules run from one file and the warm-up that makes its code
 * cache. The run-time side is bundle-run.cts. Run at build time only.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import type { BuildOptions, Metafile } from 'esbuild';
import { bundleFileUrlName, bundleImportName, type BundleFiles } from './bundle-run.cjs';
import { writeBundleManifest } from './bundle-stamps.cjs';

/** esbuild's options every bundle of compiled modules starts from. */
export const compiledModulesBundleOptions = {
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  logLevel: 'warning',
  metafile: true,
} as const satisfies BuildOptions;

/**
 * esbuild, after removing the manifest at `manifestPath` (so that a failed build leaves no stale
 * bundle vouched for), or undefined with `absentNote` printed when esbuild is not installed (an
 * install without devDependencies: the compiled modules then run).
 */
export async function esbuildForBundle(
  manifestPath: string,
  absentNote: string,
): Promise<typeof import('esbuild') | undefined> {
  rmSync(manifestPath, { force: true });
  try {
    return await import('esbuild');
  } catch {
    console.log(absentNote);
    return undefined;
  }
}

/**
 * Throws when the bundle still imports a library with import(): a script compiled from a code
 * cache has no import() callback of its own on Node 20.
 */
export function assertNoLibraryImports(metafile: Metafile, bundleName: string): void {
  const dynamic = Object.entries(metafile.inputs).flatMap(([input, { imports }]) =>
    imports
      .filter((entry) => entry.kind === 'dynamic-import' && entry.external === true)
      .map((entry) => `${input}: import('${entry.path}')`),
  );
  if (dynamic.length > 0) throw new Error(`expected no import() outside the ${bundleName}, saw ${dynamic.join(', ')}`);
}

/** What one bundle of a thread's compiled modules is made from (the member thread's, the supervisor's). */
export interface ThreadBundleSpec {
  /** The compiled entry module, an absolute path below dist/; the bundle is written beside it. */
  readonly entryPath: string;
  /** The files the bundle build writes (bundle-run.cts's bundleFilesOf). */
  readonly files: BundleFiles;
  /** What the build's messages call the bundle ('member bundle'). */
  readonly label: string;
  /** The V8 flags the bundle runs under, which its code cache must be made under. */
  readonly v8Flags: string;
  /**
   * JavaScript run in the warm-up thread after the bundle's top level, with the bundle's exports
   * as `bundleExports`, awaited before the code cache is taken: it should run what a start runs.
   */
  readonly warmUp: string;
}

/** How long the warm-up thread gets to load the bundle's modules before its code cache is taken. */
const warmUpWaitMs = 30_000;

/**
 * A module's own import.meta.url in the bundle: its path from the bundle's directory, resolved
 * against the bundle's URL at run time, so files found beside a module (thread entries, the
 * package root) are found as from the compiled module itself.
 */
function ownUrlExpression(bundleDir: string, modulePath: string): string {
  const fromBundle = relative(bundleDir, modulePath).split('\\').join('/');
  return `new URL(${JSON.stringify(fromBundle)}, ${bundleFileUrlName}).href`;
}

/** What the bundle build rewrites in a compiled module, each rewrite checked to have happened. */
function rewriteModule(bundleDir: string, path: string, source: string): string {
  // A CommonJS module of our own would see the bundle's directory as its __dirname.
  if (path.endsWith('.cjs') && /\b__(dirname|filename)\b/.test(source))
    throw new Error(`expected ${path} not to use __dirname or __filename: bundled, they name the bundle`);
  let rewritten = source.replaceAll('import.meta.url', ownUrlExpression(bundleDir, path));
  // The failpoint registry is loaded with a top-level await in ESM, which CommonJS has no way to
  // express; in the bundle the registry is a module of the bundle and loads synchronously.
  if (path.endsWith(join('actors', 'shared', 'failpoints.js'))) {
    const awaited = "await import('./failpoint-registry.js')";
    if (!rewritten.includes(awaited)) throw new Error(`expected ${path} to load its registry with ${awaited}`);
    rewritten = rewritten.replace(awaited, "require('./failpoint-registry.js')");
  }
  // Libraries only importable as ESM are imported on the bundle's behalf (bundle-run.cts).
  rewritten = rewritten.replace(/\bimport\((['"])([^'"./][^'"]*)\1\)/g, `${bundleImportName}($1$2$1)`);
  if (rewritten.includes('import.meta')) throw new Error(`expected no other use of import.meta in ${path}`);
  return rewritten;
}

/**
 * The bundle's code cache, taken in a thread that ran the bundle's top level and then the spec's
 * warm-up. V8 compiles a function when it is first called and a code cache holds only what was
 * compiled by then; the bundle's modules set themselves up inside functions (esbuild's wrappers
 * of lazily loaded modules), so a cache of the top level alone would leave most of a start to be
 * compiled from source. The thread is ended once the cache is taken; what it prints is dropped.
 */
async function warmCodeCache(spec: ThreadBundleSpec, bundlePath: string): Promise<Buffer> {
  const bundleRun = join(dirname(fileURLToPath(import.meta.url)), 'bundle-run.cjs');
  const warmUp = `
    const { parentPort } = require('node:worker_threads');
    const { readFileSync } = require('node:fs');
    const bundleRun = require(${JSON.stringify(bundleRun)});
    const bundlePath = ${JSON.stringify(bundlePath)};
    const script = bundleRun.compileBundle(bundlePath, readFileSync(bundlePath, 'utf8'), undefined);
    const bundleExports = bundleRun.runBundle(script, bundlePath);
    (async () => { ${spec.warmUp} })().then(() => parentPort.postMessage(script.createCachedData()));`;
  const worker = new Worker(warmUp, { eval: true, workerData: null, stdout: true, stderr: true });
  worker.stdout.resume();
  worker.stderr.resume();
  try {
    const cache = await new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the ${spec.label} warm-up took too long`)), warmUpWaitMs);
      worker.once('message', (data: Uint8Array) => {
        clearTimeout(timer);
        resolve(data);
      });
      worker.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      worker.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the ${spec.label} warm-up thread exited (${code}) before its code cache was taken`));
      });
    });
    return Buffer.from(cache);
  } finally {
    await worker.terminate();
  }
}

/**
 * Builds a thread's bundle, then its code cache, then the manifest (last: it vouches for both).
 * Without esbuild (an install without devDependencies) it writes nothing, and the thread runs
 * its compiled modules.
 */
export async function buildThreadBundle(spec: ThreadBundleSpec): Promise<void> {
  const bundleDir = dirname(spec.entryPath);
  const manifestPath = join(bundleDir, spec.files.manifest);
  const esbuild = await esbuildForBundle(
    manifestPath,
    `${spec.label}: esbuild is not installed; the thread runs from ${relative(process.cwd(), spec.entryPath)}`,
  );
  if (esbuild === undefined) return;
  const bundlePath = join(bundleDir, spec.files.bundle);
  const distRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const result = await esbuild.build({
    ...compiledModulesBundleOptions,
    entryPoints: [spec.entryPath],
    outfile: bundlePath,
    // Names are kept: a member's errors and stack traces are read by operators.
    minifyWhitespace: true,
    minifySyntax: true,
    banner: { js: `const ${bundleFileUrlName} = require("node:url").pathToFileURL(__filename).href;` },
    plugins: [
      {
        name: 'own-import-meta-url',
        setup(build) {
          // comlink's Node adapter is published as ESM only; bundled, it needs no require of an ES module.
          build.onResolve({ filter: /^comlink\/dist\/esm\/node-adapter\.mjs$/ }, (args) => ({
            path: createRequire(args.importer).resolve(args.path),
          }));
          build.onLoad({ filter: /\.c?js$/ }, (args) => {
            if (!args.path.startsWith(distRoot)) return undefined;
            return { contents: rewriteModule(bundleDir, args.path, readFileSync(args.path, 'utf8')), loader: 'js' };
          });
        },
      },
    ],
  });
  // Every import() left must be of the bundle's own modules, which esbuild turns into calls.
  assertNoLibraryImports(result.metafile, spec.label);
  // V8 takes a code cache only under the flags it was made with.
  setFlagsFromString(spec.v8Flags);
  let cache: Buffer;
  try {
    cache = await warmCodeCache(spec, bundlePath);
  } catch (error) {
    // A bundle that did not load in the warm-up is not vouched for: the thread then runs its
    // compiled modules, slower but as tested. An install must not fail for the warm-up's sake.
    console.warn(`${spec.label}: the warm-up run failed, so the thread runs its compiled modules: ${String(error)}`);
    return;
  }
  const codeCachePath = join(bundleDir, spec.files.codeCache);
  writeFileSync(codeCachePath, cache);
  writeBundleManifest(manifestPath, bundlePath, codeCachePath);
}
