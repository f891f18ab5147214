/**
 * Makes the member thread's one-file bundle after tsc: dist/actors/member/worker.js and every
 * compiled module it reaches, in one CommonJS file beside it (libraries and native addons stay in
 * node_modules), a V8 code cache of it, and a manifest of what it was made after. The thread's
 * entry (worker-entry.cts) runs the bundle only while it is fresher than tsc's last build.
 *
 *   node dist/actors/member/worker-bundle-build.js
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildThreadBundle } from '../../src/lib/bundle-build.js';
import { memberBundleFiles, memberStartV8Flags } from './worker-entry.cjs';

await buildThreadBundle({
  entryPath: join(fileURLToPath(new URL('.', import.meta.url)), 'worker.js'),
  files: memberBundleFiles,
  label: 'member bundle',
  v8Flags: memberStartV8Flags,
  // The thread waits for its data, which never comes, so no member starts; worker.js imports the
  // member's heavier modules as it starts, and they settle within a few turns.
  warmUp: 'await new Promise((resolve) => setTimeout(resolve, 500));',
});
