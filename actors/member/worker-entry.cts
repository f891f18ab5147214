/**
 * The member thread's entry: runs the one-file bundle of the member thread's modules that the
 * build makes (actors/supervisor/thread-bundles-build.ts) with V8's code cache for it, or the
 * compiled ESM modules (worker.js) when there is no bundle or it is older than tsc's last build
 * (src/lib/bundle-run.cts). CommonJS, so that choosing costs no ESM loader start.
 */
import { bundleFilesOf, startThreadEntry } from '../../src/lib/bundle-run.cjs';

/** The files one member bundle build writes beside this module. */
export const memberBundleFiles = bundleFilesOf('worker');

/**
 * The V8 flags bin/tsetcd.js sets while a member starts, which the code caches of the member's
 * and the supervisor's bundles are made under: V8 rejects a cache made under other flags (a
 * member given --opt runs its bundles uncached).
 */
export const memberStartV8Flags = '--no-opt';

// The member thread runs from the bundle when it is fresh, else from the compiled modules.
startThreadEntry(module, memberBundleFiles, () => import('./worker.js'));
