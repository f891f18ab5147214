/**
 * What a one-file bundle of compiled modules (tsetcdctl's, the member thread's) is checked
 * against before it runs: the build records the bundle, its V8 code cache and tsc's build record
 * as it saw them, and the bundle runs only while tsc has not emitted since. Freshness is judged
 * by tsc's record (dist/.tsbuildinfo, rewritten whenever tsc emits) rather than by each of the
 * bundle's inputs: three stats instead of hundreds keep the check under a millisecond.
 * CommonJS, as the loaders that read it are.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

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

/** Package root: dist/src/lib/ is three levels below it. */
const packageRoot = join(__dirname, '..', '..', '..');

/** The stamp a file has now, or undefined when it is gone. */
export function stampOf(relativePath: string): FileStamp | undefined {
  const stats = statSync(join(packageRoot, relativePath), { throwIfNoEntry: false });
  return stats === undefined ? undefined : [relativePath, stats.size, stats.mtimeMs];
}

/** The manifest a bundle build wrote at `manifestPath`, or undefined when there is none. */
export function readBundleManifest(manifestPath: string): BundleManifest | undefined {
  try {
    return JSON.parse(readFileSync(manifestPath, 'utf8')) as BundleManifest;
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

/** Records the bundle and code cache just written (absolute paths) with tsc's record: the build's last step. */
export function writeBundleManifest(manifestPath: string, bundlePath: string, codeCachePath: string): void {
  const stamp = (path: string): FileStamp => {
    const found = stampOf(path);
    if (found === undefined) throw new Error(`expected ${path} to exist after the bundle build`);
    return found;
  };
  const manifest: BundleManifest = {
    bundle: stamp(relative(packageRoot, bundlePath)),
    codeCache: stamp(relative(packageRoot, codeCachePath)),
    buildInfo: stamp(buildInfoPath),
  };
  writeFileSync(manifestPath, `${JSON.stringify(manifest)}\n`);
}
