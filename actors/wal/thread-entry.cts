/**
 * The WAL thread's entry: runs the one-file bundle of the WAL thread's modules that the build
 * makes (actors/supervisor/thread-bundles-build.ts) with V8's code cache for it, or the compiled
 * ESM modules (thread.js) when there is no bundle or it is older than tsc's last build
 * (src/lib/bundle-run.cts). A thread started on a CommonJS file starts no ESM loader.
 */
import { bundleFilesOf, startThreadEntry } from '../../src/lib/bundle-run.cjs';

/** The files one WAL bundle build writes beside this module. */
export const walBundleFiles = bundleFilesOf('thread');

startThreadEntry(module, walBundleFiles, () => import('./thread.js'));
