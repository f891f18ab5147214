/**
 * The member thread's entry: runs the one-file bundle of the member thread's modules that the
 * build makes (worker-bundle-build.ts) with V8's code cache for it, or the compiled ESM modules
 * (worker.js) when there is no bundle or it is older than tsc's last build. Node resolves, reads,
 * links and compiles each module of an ESM graph one by one, about 250 of them for a member; one
 * CommonJS file compiled from a code cache skips most of that. The freshness rule is tsetcdctl's
 * (src/lib/bundle-stamps.cts). CommonJS, so that choosing costs no ESM loader start.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Script } from 'node:vm';
import { isMainThread } from 'node:worker_threads';
import { isFresh, readBundleManifest } from '../../src/lib/bundle-stamps.cjs';

/** The files one member bundle build writes beside this module. */
export const memberBundleFiles = {
  bundle: 'worker.bundle.cjs',
  codeCache: 'worker.bundle.cjs.cache',
  manifest: 'worker.bundle.cjs.json',
} as const;

/**
 * The V8 flags bin/tsetcd.js sets while a member starts, which the code cache is made under:
 * V8 rejects a cache made under other flags (a member given --opt runs the bundle uncached).
 */
export const memberStartV8Flags = '--no-opt';

const here = __dirname;
const bundlePath = join(here, memberBundleFiles.bundle);

/** Compiles the CommonJS bundle as Node's loader would, with `cachedData` from the build when given. */
export function compileMemberBundle(source: string, cachedData: Buffer | undefined): Script {
  const wrapped = `(function (exports, require, module, __filename, __dirname, __memberImport) {${source}\n})`;
  return new Script(wrapped, { filename: bundlePath, ...(cachedData === undefined ? {} : { cachedData }) });
}

/** Runs the compiled bundle's top level: the member thread's worker.js and what it imports. */
export function runMemberBundle(script: Script): void {
  const module = { exports: {} };
  const body = script.runInThisContext() as (...args: unknown[]) => void;
  const importLibrary = (specifier: string): Promise<unknown> => import(specifier);
  body.call(module.exports, module.exports, createRequire(bundlePath), module, bundlePath, here, importLibrary);
}

/** Runs the member thread from the bundle when it is fresh, else from the compiled modules. */
function start(): void {
  // Only a thread started on this file runs the member; the bundle build and the tests import
  // this module for its helpers.
  if (isMainThread || require.main !== module) return;
  const manifest = readBundleManifest(join(here, memberBundleFiles.manifest));
  if (manifest !== undefined && isFresh(manifest)) {
    const source = readFileSync(bundlePath, 'utf8');
    runMemberBundle(compileMemberBundle(source, readFileSync(join(here, memberBundleFiles.codeCache))));
    return;
  }
  import('./worker.js').catch((error: unknown) => {
    throw error;
  });
}

start();
