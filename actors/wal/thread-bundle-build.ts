/**
 * Makes the WAL thread's one-file bundle after tsc: dist/actors/wal/thread.js and every compiled
 * module it reaches, in one CommonJS file beside it, a V8 code cache of it, and a manifest of what
 * it was made after. The thread's entry (thread-entry.cts) runs the bundle only while it is
 * fresher than tsc's last build.
 *
 *   node dist/actors/wal/thread-bundle-build.js
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildThreadBundle } from '../../src/lib/bundle-build.js';
import { memberStartV8Flags } from '../member/worker-entry.cjs';
import { walBundleFiles } from './thread-entry.cjs';

await buildThreadBundle({
  entryPath: join(fileURLToPath(new URL('.', import.meta.url)), 'thread.js'),
  files: walBundleFiles,
  label: 'WAL bundle',
  // The WAL thread starts with the member, under the member start's flags.
  v8Flags: memberStartV8Flags,
  // The thread waits for its data, which never comes, so no WAL is opened.
  warmUp: 'await new Promise((resolve) => setTimeout(resolve, 200));',
});
