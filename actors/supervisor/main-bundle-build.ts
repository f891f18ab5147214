/**
 * Makes the supervisor's one-file bundle after tsc: dist/actors/supervisor/main.js and every
 * compiled module it reaches, in one CommonJS file beside it (libraries stay in node_modules), a
 * V8 code cache of it, and a manifest of what it was made after. bin/tsetcd.js loads it through
 * main-entry.cts only while it is fresher than tsc's last build.
 *
 *   node dist/actors/supervisor/main-bundle-build.js
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildThreadBundle } from '../../src/lib/bundle-build.js';
import { memberStartV8Flags } from '../member/worker-entry.cjs';
import { mainBundleFiles } from './main-entry.cjs';

await buildThreadBundle({
  entryPath: join(fileURLToPath(new URL('.', import.meta.url)), 'main.js'),
  files: mainBundleFiles,
  label: 'supervisor bundle',
  // bin/tsetcd.js loads the supervisor under the member start's flags.
  v8Flags: memberStartV8Flags,
  // `--version` parses and resolves the flags as a start does, then prints and returns.
  warmUp: "await bundleExports.run(['--version']);",
});
