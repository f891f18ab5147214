/**
 * Makes the one-file bundles the member's threads load from, after tsc: for the member thread
 * (dist/actors/member/worker.js), the supervisor's main thread (dist/actors/supervisor/main.js)
 * and the WAL thread (dist/actors/wal/thread.js), each compiled module they reach in one CommonJS
 * file beside the entry module (libraries and native addons stay in node_modules), a V8 code
 * cache of it, and a manifest of what it was made after. Each thread's entry (worker-entry.cts,
 * main-entry.cts, thread-entry.cts) runs its bundle only while it is fresher than tsc's last build.
 *
 *   node dist/actors/supervisor/thread-bundles-build.js
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildThreadBundle, type ThreadBundleSpec } from '../../src/lib/bundle-build.js';
import { memberBundleFiles, memberStartV8Flags } from '../member/worker-entry.cjs';
import { walBundleFiles } from '../wal/thread-entry.cjs';
import { mainBundleFiles } from './main-entry.cjs';

const actorsDir = fileURLToPath(new URL('..', import.meta.url));

/** The three bundles; all run under the flags bin/tsetcd.js starts a member with. */
const specs: ThreadBundleSpec[] = [
  {
    entryPath: join(actorsDir, 'member', 'worker.js'),
    files: memberBundleFiles,
    label: 'member bundle',
    v8Flags: memberStartV8Flags,
    // The thread waits for its data, which never comes, so no member starts; worker.js imports
    // the member's heavier modules as it starts, and they settle within a few turns.
    warmUp: 'await new Promise((resolve) => setTimeout(resolve, 500));',
  },
  {
    entryPath: join(actorsDir, 'supervisor', 'main.js'),
    files: mainBundleFiles,
    label: 'supervisor bundle',
    v8Flags: memberStartV8Flags,
    // `--version` parses and resolves the flags as a start does, then prints and returns.
    warmUp: "await bundleExports.run(['--version']);",
  },
  {
    entryPath: join(actorsDir, 'wal', 'thread.js'),
    files: walBundleFiles,
    label: 'WAL bundle',
    v8Flags: memberStartV8Flags,
    // The thread waits for its data, which never comes, so no WAL is opened.
    warmUp: 'await new Promise((resolve) => setTimeout(resolve, 200));',
  },
];

for (const spec of specs) await buildThreadBundle(spec);
