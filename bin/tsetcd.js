#!/usr/bin/env node
// Starts a tsetcd member (or `tsetcd cluster`); the implementation is compiled TypeScript in dist/.
import { setTimeout, clearTimeout } from 'node:timers';
import { setFlagsFromString } from 'node:v8';

// V8 optimizes a function once it has used up its interrupt budget, 66 KB of bytecode by default.
// A request passes through many small functions once each, so at a few hundred requests a second
// most of the request path runs unoptimized for a long time. With 16 KB, 3 processes fed 200 puts/s
// used 3.7-4.6 ms of CPU per put against 5.3-6.5 ms, and loads of 64 clients were no slower.
// The flag is process-wide, so the member's worker threads get it too; a node flag given
// explicitly wins. It is set once the member serves clients, not before: during a start the
// threads run module set-up code once each, and with 16 KB V8 optimized much of it in its
// helper threads for nothing (a fresh member took 1.5 s of CPU to publish itself against 1.0 s).
const nodeFlags = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
const lowerInterruptBudget = () => {
  if (!nodeFlags.includes('--interrupt-budget')) setFlagsFromString('--interrupt-budget=16000');
};
const argv = process.argv.slice(2);
// A member's thread starts first, loading its modules while the supervisor loads its own.
const subcommands = ['cluster', 'inspect', 'machines'];
const wantsMember =
  !subcommands.includes(argv[0]) && !argv.some((argument) => /^--?(h|help|version)(=|$)/.test(argument));
// A member's start runs each thread's module set-up code once, yet V8 still sent some of it to
// TurboFan in its helper threads: a fresh member used about 0.14 s less CPU before it published
// itself with the optimizing compiler off (median of 5 alternating pairs, 0.83 s against 0.97 s).
// So it is off until the member serves clients, or for startOptimizerOffMaxMs at most, so that
// a long start (a large WAL to replay, a quorum to wait for) runs optimized code after that.
// Like the budget, the flag is process-wide and reaches the worker threads; one given explicitly wins.
const startOptimizerOffMaxMs = 2000;
const optimizerFlagGiven = /--(no-)?(opt|turbofan)(=|\s|$)/.test(nodeFlags);
let optimizerOffTimer;
if (wantsMember && !optimizerFlagGiven) {
  setFlagsFromString('--no-opt');
  optimizerOffTimer = setTimeout(() => setFlagsFromString('--opt'), startOptimizerOffMaxMs);
  optimizerOffTimer.unref();
}
const serving = () => {
  if (optimizerOffTimer !== undefined) {
    clearTimeout(optimizerOffTimer);
    setFlagsFromString('--opt');
  }
  lowerInterruptBudget();
};
const prestarted = wantsMember
  ? import('../dist/actors/supervisor/member-prestart.js').then((prestart) => prestart.prestartMemberWorker())
  : Promise.resolve(undefined);
// The supervisor's modules load from the build's bundle when it is fresh (main-entry.cts).
const supervisor = import('../dist/actors/supervisor/main-entry.cjs').then((entry) => entry.loadMain());
Promise.all([supervisor, prestarted])
  .then(([main, worker]) => main.run(argv, worker))
  .then(serving)
  .catch((error) => {
    console.error(
      error && error.code === 'ERR_MODULE_NOT_FOUND'
        ? 'tsetcd is not built: run `npm install` (or `npm run build`) first'
        : error,
    );
    process.exit(1);
  });
