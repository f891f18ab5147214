/**
 * Loads tsetcdctl for bin/tsetcdctl.cjs: the one-file bundle `npm run build` makes of the compiled
 * CLI (ctl/bundle-build.ts), with V8's code cache for it, or dist/ctl/main.js when there is no
 * bundle or it is older than the files it was made from (a `tsc` run since the last bundle). Node
 * resolves, reads and links every module of an ESM graph one by one, and compiles each from
 * source; one CommonJS file compiled from a code cache skips most of that start-up work.
 *
 * Freshness is judged by tsc's own record of its last build (dist/.tsbuildinfo, rewritten whenever
 * tsc emits, so newer than the bundle after a tsc run) rather than by each of the bundle's 70-odd
 * inputs: three stats instead of seventy keep the check under a millisecond. This module and the bin are CommonJS: an ESM entry makes
 * Node start its ESM loader and build an ESM facade of each built-in module imported, and the one
 * of node:fs reads every lazy export (fs.ReadStream loads the streams code); 16 ms of CPU in all.
 */
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Script, constants as vmConstants } from 'node:vm';

/** What bin/tsetcdctl.cjs and the tests call: the exports of ctl/main.ts. */
export type CtlModule = typeof import('./main.js');

/** The files one bundle build writes beside this module. */
export const bundleFiles = {
  bundle: 'tsetcdctl.cjs',
  codeCache: 'tsetcdctl.cjs.cache',
  manifest: 'tsetcdctl.cjs.json',
} as const;

/** A file as the bundle build saw it: path relative to the package root, size and mtime. */
export type FileStamp = readonly [path: string, size: number, mtimeMs: number];

/** What the build recorded: the bundle, its code cache, and tsc's build record they were made after. */
export interface BundleManifest {
  readonly bundle: FileStamp;
  readonly codeCache: FileStamp;
  readonly buildInfo: FileStamp;
}

/** tsc's incremental build record (tsconfig.json's tsBuildInfoFile), relative to the package root. */
export const buildInfoPath = 'dist/.tsbuildinfo';

const here = __dirname;
/** Package root: dist/ctl/ is two levels below it. */
const packageRoot = join(here, '..', '..');

let loadedFrom: string | undefined;

/** The file the last loadCtl() ran tsetcdctl from (for the start-up test). */
export function ctlLoadedFrom(): string | undefined {
  return loadedFrom;
}

/** The stamp a file has now, or undefined when it is gone. */
export function stampOf(relativePath: string): FileStamp | undefined {
  const stats = statSync(join(packageRoot, relativePath), { throwIfNoEntry: false });
  return stats === undefined ? undefined : [relativePath, stats.size, stats.mtimeMs];
}

/** The manifest the last bundle build wrote, or undefined when there is none. */
export function readManifest(): BundleManifest | undefined {
  try {
    return JSON.parse(readFileSync(join(here, bundleFiles.manifest), 'utf8')) as BundleManifest;
  } catch {
    return undefined;
  }
}

/**
 * Whether the bundle is still what tsc's last build would bundle: the three files have the sizes
 * the bundle build saw, and tsc's record is no newer than the bundle. Modification times are
 * compared with each other, not with the recorded ones: npm gives every file of a package it
 * installs one fixed time, and the bundle must still run there.
 */
export function isFresh(manifest: BundleManifest): boolean {
  const recorded = [manifest.bundle, manifest.codeCache, manifest.buildInfo];
  return stampsFresh(
    recorded,
    recorded.map((stamp) => stampOf(stamp[0])),
  );
}

/** isFresh's rule over the stamps recorded (bundle, cache, tsc's record) and those the files have now. */
export function stampsFresh(recorded: readonly FileStamp[], now: ReadonlyArray<FileStamp | undefined>): boolean {
  const sizesKept = recorded.every((stamp, index) => now[index]?.[1] === stamp[1]);
  const [bundleNow, , buildInfoNow] = now;
  return sizesKept && bundleNow !== undefined && buildInfoNow !== undefined && buildInfoNow[2] <= bundleNow[2];
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
