/**
 * Makes tsetcdctl's one-file bundle after tsc: dist/ctl/main.js and every compiled module it
 * reaches, in one CommonJS file (libraries stay in node_modules), a V8 code cache for it, and a
 * manifest of what it was made after (ctl/bundle-loader.ts runs the bundle only until tsc next
 * emits). CommonJS because a bundled ESM file hoists every static import of a library to its
 * top, so a one-shot get would load lmdb; in CommonJS those stay inside the module that needs them.
 *
 *   node dist/ctl/bundle-build.js
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertNoLibraryImports, compiledModulesBundleOptions, esbuildForBundle } from '../src/lib/bundle-build.js';
import { writeBundleManifest } from '../src/lib/bundle-stamps.cjs';
import { bundleFiles, compileBundle, runBundle } from './bundle-loader.cjs';
import { warmUp } from './bundle-warm-up.js';

const here = fileURLToPath(new URL('.', import.meta.url));

/** Builds the bundle, then the code cache of its top level, then the manifest (last: it vouches for both). */
async function main(): Promise<void> {
  const manifestPath = join(here, bundleFiles.manifest);
  const esbuild = await esbuildForBundle(
    manifestPath,
    'tsetcdctl bundle: esbuild is not installed; tsetcdctl runs from dist/ctl/main.js',
  );
  if (esbuild === undefined) return;
  const bundlePath = join(here, bundleFiles.bundle);
  const result = await esbuild.build({
    ...compiledModulesBundleOptions,
    entryPoints: [join(here, 'main.js')],
    outfile: bundlePath,
    // Fewer bytes to read and hash at every start. Names are minified too: the errors a user sees
    // set their `name` explicitly, and only a crash's stack trace shows function names.
    minify: true,
    // Modules find files beside themselves (the package root, worker files); the bundle sits in
    // dist/ctl/ as main.js does, so its own URL stands in for theirs.
    define: { 'import.meta.url': '__bundleFileUrl' },
    banner: { js: 'const __bundleFileUrl = require("node:url").pathToFileURL(__filename).href;' },
  });
  // Every library the bundle loads must come through require (ctl/lazy-modules.ts).
  assertNoLibraryImports(result.metafile, 'bundle');
  const script = compileBundle(readFileSync(bundlePath, 'utf8'), undefined);
  try {
    await warmUp(runBundle(script));
  } catch (error) {
    // An install must not fail for want of a loopback socket: the cache then holds the top level
    // only, and tsetcdctl still runs (test/ctl/startup-modules fails on such a cache).
    console.warn(`tsetcdctl bundle: the warm-up run failed, so the code cache covers start-up only: ${String(error)}`);
  }
  writeFileSync(join(here, bundleFiles.codeCache), script.createCachedData());
  writeBundleManifest(manifestPath, bundlePath, join(here, bundleFiles.codeCache));
}

await main();
