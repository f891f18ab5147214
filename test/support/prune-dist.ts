/**
 * Removes compiled output whose source is gone. npm test compiles incrementally over the dist/ that
 * `npm ci` (prepare) or an earlier run left, and tsc never deletes the .js of a deleted .ts: a test
 * file or a worker module removed from the tree would otherwise still run from dist. Every .js and
 * .js.map under dist/ must have its .ts in the tree; anything else compiled there is left alone.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { packageRoot } from '../../src/lib/paths.js';

/** The source a compiled file under dist/ came from (relative to the package root), or undefined for other files. */
export function sourceOf(compiledPath: string): string | undefined {
  const stem = /^(.*)\.js(\.map)?$/.exec(compiledPath)?.[1];
  return stem === undefined ? undefined : `${stem}.ts`;
}

function compiledFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? compiledFiles(path) : [path];
  });
}

function main(): void {
  const root = packageRoot();
  const dist = join(root, 'dist');
  const removed: string[] = [];
  for (const path of compiledFiles(dist)) {
    const source = sourceOf(relative(dist, path));
    if (source === undefined || existsSync(join(root, source))) continue;
    rmSync(path);
    removed.push(relative(root, path));
  }
  if (removed.length > 0)
    console.log(`removed ${removed.length} compiled files whose source is gone: ${removed.join(', ')}`);
}

main();
