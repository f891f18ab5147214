/**
 * Loads tsetcdctl for bin/tsetcdctl.cjs: the one-file bundle `npm run build` makes of the compiled
 * CLI (ctl/bundle-build.ts), with V8's code cache for it, or dist/ctl/main.js when there is no
 * bundle or it is older than the files it was made from (a `tsc` run since the last bundle). Node
 * resolves, reads and links every module of an ESM graph one by one, and compiles each from
 * source; one CommonJS file compiled from a code cache skips most of that start-up work.
 *
 * Freshness is judged by tsc's own record of its last build (src/lib/bundle-stamps.cts). This
 * module and the bin are CommonJS: an ESM entry makes
 * Node start its ESM loader and build an ESM facade of each built-in module imported, and the one
 * of node:fs reads every lazy export (fs.ReadStream loads the streams code); 16 ms of CPU in all.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Script, constants as vmConstants } from 'node:vm';
import { isFresh, readBundleManifest, type BundleManifest } from '../src/lib/bundle-stamps.cjs';

/** What bin/tsetcdctl.cjs and the tests call: the exports of ctl/main.ts. */
export type CtlModule = typeof import('./main.js');

/** The files one bundle build writes beside this module. */
export const bundleFiles = {
  bundle: 'tsetcdctl.cjs',
  codeCache: 'tsetcdctl.cjs.cache',
  manifest: 'tsetcdctl.cjs.json',
} as const;

export {
  buildInfoPath,
  isFresh,
  stampOf,
  stampsFresh,
  type BundleManifest,
  type FileStamp,
} from '../src/lib/bundle-stamps.cjs';

const here = __dirname;

let loadedFrom: string | undefined;

/** The file the last loadCtl() ran tsetcdctl from (for the start-up test). */
export function ctlLoadedFrom(): string | undefined {
  return loadedFrom;
}

/** The manifest the last bundle build wrote, or undefined when there is none. */
export function readManifest(): BundleManifest | undefined {
  return readBundleManifest(join(here, bundleFiles.manifest));
}

/** Compiles the CommonJS bundle as Node's loader would, with `cachedData` from the build when given. */
export function compileBundle(source: string, cachedData: Buffer | undefined): Script {
  const bundlePath = join(here, bundleFiles.bundle);
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
  return new Script(wrapped, {
    filename: bundlePath,
    ...(cachedData === undefined ? {} : { cachedData }),
    // The bundle keeps import() of Node's own modules (node:tls, node:child_process).
    importModuleDynamically: vmConstants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
}

/** Runs the compiled bundle's top level and returns its exports. */
export function runBundle(script: Script): CtlModule {
  const bundlePath = join(here, bundleFiles.bundle);
  const module = { exports: {} as CtlModule };
  const body = script.runInThisContext() as (
    exports: unknown,
    require: NodeJS.Require,
    module: unknown,
    filename: string,
    dirname: string,
  ) => void;
  body.call(module.exports, module.exports, createRequire(bundlePath), module, bundlePath, here);
  return module.exports;
}

/** tsetcdctl's entry module: the bundle when it is fresh, else the compiled ESM modules. */
export async function loadCtl(): Promise<CtlModule> {
  const manifest = readManifest();
  if (manifest !== undefined && isFresh(manifest)) {
    const source = readFileSync(join(here, bundleFiles.bundle), 'utf8');
    const cachedData = readFileSync(join(here, bundleFiles.codeCache));
    loadedFrom = join(here, bundleFiles.bundle);
    return runBundle(compileBundle(source, cachedData));
  }
  loadedFrom = join(here, 'main.js');
  return import('./main.js');
}
