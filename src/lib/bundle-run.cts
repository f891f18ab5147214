/**
 * Runs a one-file CommonJS bundle of compiled modules (the member thread's, the supervisor's)
 * with V8's code cache for it, when the build's manifest says it is fresher than tsc's last build
 * (bundle-stamps.cts); the caller falls back to the compiled ESM modules otherwise. Node resolves,
 * reads, links and compiles each module of an ESM graph one by one, hundreds of them for a
 * member; one CommonJS file compiled from a code cache skips most of that. The build side is
 * bundle-build.ts. CommonJS, so that choosing costs no ESM loader start.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Script } from 'node:vm';
import { isMainThread } from 'node:worker_threads';
import { isFresh, readBundleManifest } from './bundle-stamps.cjs';

/** The files one bundle build writes beside the compiled entry module it bundles. */
export interface BundleFiles {
  readonly bundle: string;
  readonly codeCache: string;
  readonly manifest: string;
}

/** The files of the bundle of `<name>.js`: `<name>.bundle.cjs`, its code cache and its manifest. */
export function bundleFilesOf(name: string): BundleFiles {
  const bundle = `${name}.bundle.cjs`;
  return { bundle, codeCache: `${bundle}.cache`, manifest: `${bundle}.json` };
}

/**
 * The bundle's own name for import(): a script compiled with a code cache has no import()
 * callback of its own on Node 20 (and the experimental one prints a warning), so the build
 * rewrites each import() of a library to this parameter, and this module, which Node loaded
 * itself, imports on the bundle's behalf.
 */
export const bundleImportName = '__bundleImport';

/** The bundle's URL as the build's rewrites of import.meta.url refer to it (bundle-build.ts). */
export const bundleFileUrlName = '__bundleFileUrl';

/** Compiles the CommonJS bundle at `bundlePath` as Node's loader would, with `cachedData` from the build when given. */
export function compileBundle(bundlePath: string, source: string, cachedData: Buffer | undefined): Script {
  const wrapped = `(function (exports, require, module, __filename, __dirname, ${bundleImportName}) {${source}\n})`;
  return new Script(wrapped, { filename: bundlePath, ...(cachedData === undefined ? {} : { cachedData }) });
}

/** Runs the compiled bundle's top level (the entry module and what it imports) and returns its exports. */
export function runBundle(script: Script, bundlePath: string): unknown {
  const module = { exports: {} };
  const body = script.runInThisContext() as (...args: unknown[]) => void;
  const importLibrary = (specifier: string): Promise<unknown> => import(specifier);
  body.call(
    module.exports,
    module.exports,
    createRequire(bundlePath),
    module,
    bundlePath,
    dirname(bundlePath),
    importLibrary,
  );
  return module.exports;
}

/**
 * Runs the bundle the build wrote in `dir` when its manifest says it is fresh and returns its
 * exports, or undefined (nothing run) when it is stale or gone.
 */
export function runFreshBundle(dir: string, files: BundleFiles): unknown {
  const manifest = readBundleManifest(join(dir, files.manifest));
  if (manifest === undefined || !isFresh(manifest)) return undefined;
  const bundlePath = join(dir, files.bundle);
  const source = readFileSync(bundlePath, 'utf8');
  return runBundle(compileBundle(bundlePath, source, readFileSync(join(dir, files.codeCache))), bundlePath);
}

/**
 * A thread entry's start: runs the thread from the bundle beside `entry` when it is fresh, else
 * imports the compiled modules with `importCompiled`. Only a thread started on the entry file
 * runs; the bundle builds and the tests load the entry for its exports.
 */
export function startThreadEntry(
  entry: NodeJS.Module,
  files: BundleFiles,
  importCompiled: () => Promise<unknown>,
): void {
  if (isMainThread || require.main !== entry) return;
  if (runFreshBundle(dirname(entry.filename), files) !== undefined) return;
  importCompiled().catch((error: unknown) => {
    throw error;
  });
}
