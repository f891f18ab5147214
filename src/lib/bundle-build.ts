/**
 * What tsetcdctl's and the member thread's bundle builds share (ctl/bundle-build.ts,
 * actors/member/worker-bundle-build.ts): esbuild, when installed, run over compiled modules into
 * one CommonJS file for Node 20 with the libraries left in node_modules, and the check that no
 * import() of a library is left in it. Run at build time only.
 */
import { rmSync } from 'node:fs';
import type { BuildOptions, Metafile } from 'esbuild';

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
