/**
 * Makes the member thread's one-file bundle after tsc: dist/actors/member/worker.js and every
 * compiled module it reaches, in one CommonJS file beside it (libraries and native addons stay in
 * node_modules), a V8 code cache of it, and a manifest of what it was made after. The thread's
 * entry (worker-entry.cts) runs the bundle only while it is fresher than tsc's last build, as
 * tsetcdctl's loader does (ctl/bundle-loader.cts, whose freshness rule and script helpers this reuses).
 *
 *   node dist/actors/member/worker-bundle-build.js
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildInfoPath, stampOf, type BundleManifest, type FileStamp } from '../../ctl/bundle-loader.cjs';
import { compileMemberBundle, memberBundleFiles } from './worker-entry.cjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const packageRoot = join(here, '..', '..', '..');

function stamp(path: string): FileStamp {
  const found = stampOf(path);
  if (found === undefined) throw new Error(`expected ${path} to exist after the member bundle build`);
  return found;
}

/**
 * A module's own import.meta.url in the bundle: its path from the bundle's directory, resolved
 * against the bundle's URL at run time, so files found beside a module (thread entries, the
 * package root) are found as from the compiled module itself.
 */
function ownUrlExpression(modulePath: string): string {
  const fromBundle = relative(here, modulePath).split('\\').join('/');
  return `new URL(${JSON.stringify(fromBundle)}, __memberBundleFileUrl).href`;
}

/** What the bundle build rewrites in a compiled module, each rewrite checked to have happened. */
function rewriteModule(path: string, source: string): string {
  let rewritten = source.replaceAll('import.meta.url', ownUrlExpression(path));
  // The failpoint registry is loaded with a top-level await in ESM, which CommonJS has no way to
  // express; in the bundle the registry is a module of the bundle and loads synchronously.
  if (path.endsWith(join('actors', 'shared', 'failpoints.js'))) {
    const awaited = "await import('./failpoint-registry.js')";
    if (!rewritten.includes(awaited)) throw new Error(`expected ${path} to load its registry with ${awaited}`);
    rewritten = rewritten.replace(awaited, "require('./failpoint-registry.js')");
  }
  // A script compiled with a code cache has no import() callback of its own on Node 20 (and the
  // experimental one prints a warning): libraries only importable as ESM are imported by the
  // thread's entry, a module Node loaded itself, on the bundle's behalf.
  rewritten = rewritten.replace(/\bimport\((['"])([^'"./][^'"]*)\1\)/g, '__memberImport($1$2$1)');
  if (rewritten.includes('import.meta')) throw new Error(`expected no other use of import.meta in ${path}`);
  return rewritten;
}

/** Builds the bundle, then its code cache, then the manifest (last: it vouches for both). */
async function main(): Promise<void> {
  const manifestPath = join(here, memberBundleFiles.manifest);
  rmSync(manifestPath, { force: true });
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch {
    console.log('member bundle: esbuild is not installed; member threads run from dist/actors/member/worker.js');
    return;
  }
  const bundlePath = join(here, memberBundleFiles.bundle);
  const distRoot = join(packageRoot, 'dist');
  const result = await esbuild.build({
    entryPoints: [join(here, 'worker.js')],
    outfile: bundlePath,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    logLevel: 'warning',
    metafile: true,
    // Names are kept: a member's errors and stack traces are read by operators.
    minifyWhitespace: true,
    minifySyntax: true,
    banner: { js: 'const __memberBundleFileUrl = require("node:url").pathToFileURL(__filename).href;' },
    plugins: [
      {
        name: 'own-import-meta-url',
        setup(build) {
          // comlink's Node adapter is published as ESM only; bundled, it needs no require of an ES module.
          build.onResolve({ filter: /^comlink\/dist\/esm\/node-adapter\.mjs$/ }, (args) => ({
            path: createRequire(args.importer).resolve(args.path),
          }));
          build.onLoad({ filter: /\.js$/ }, (args) => {
            if (!args.path.startsWith(distRoot)) return undefined;
            return { contents: rewriteModule(args.path, readFileSync(args.path, 'utf8')), loader: 'js' };
          });
        },
      },
    ],
  });
  // Every import() left must be of the bundle's own modules, which esbuild turns into calls.
  const dynamic = Object.entries(result.metafile.inputs).flatMap(([input, { imports }]) =>
    imports
      .filter((entry) => entry.kind === 'dynamic-import' && entry.external === true)
      .map((entry) => `${input}: import('${entry.path}')`),
  );
  if (dynamic.length > 0) throw new Error(`expected no import() outside the member bundle, saw ${dynamic.join(', ')}`);
  const script = compileMemberBundle(readFileSync(bundlePath, 'utf8'), undefined);
  writeFileSync(join(here, memberBundleFiles.codeCache), script.createCachedData());
  const manifest: BundleManifest = {
    bundle: stamp(relative(packageRoot, bundlePath)),
    codeCache: stamp(relative(packageRoot, join(here, memberBundleFiles.codeCache))),
    buildInfo: stamp(buildInfoPath),
  };
  writeFileSync(manifestPath, `${JSON.stringify(manifest)}\n`);
}

await main();
