/**
 * The supervisor's modules for bin/tsetcd.js: main.js and everything it imports, from the
 * one-file bundle the build makes (thread-bundles-build.ts) with V8's code cache for it, or from the
 * compiled ESM modules when there is no bundle or it is older than tsc's last build
 * (src/lib/bundle-run.cts). CommonJS, so that choosing loads no ESM module of its own.
 */
import { bundleFilesOf, runFreshBundle } from '../../src/lib/bundle-run.cjs';

/** The exports of actors/supervisor/main.ts. */
export type SupervisorMain = typeof import('./main.js');

/** The files one supervisor bundle build writes beside this module. */
export const mainBundleFiles = bundleFilesOf('main');

/** The supervisor's main module: the bundle's when it is fresh, else the compiled one. */
export function loadMain(): Promise<SupervisorMain> {
  const bundled = runFreshBundle(__dirname, mainBundleFiles) as SupervisorMain | undefined;
  return bundled === undefined ? import('./main.js') : Promise.resolve(bundled);
}
