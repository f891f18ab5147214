#!/usr/bin/env node
// Starts a tsetcd member (or `tsetcd cluster`); the implementation is compiled TypeScript in dist/.
const argv = process.argv.slice(2);
// A member's thread starts first, loading its modules while the supervisor loads its own.
const wantsMember = argv[0] !== 'cluster' && !argv.some((argument) => /^--?(h|help|version)(=|$)/.test(argument));
const prestarted = wantsMember ? import('../dist/actors/member-prestart.js').then((prestart) => prestart.prestartMemberWorker()) : Promise.resolve(undefined);
Promise.all([import('../dist/actors/main.js'), prestarted]).then(([main, worker]) => main.run(argv, worker)).catch((error) => {
  console.error(error && error.code === 'ERR_MODULE_NOT_FOUND' ? 'tsetcd is not built: run `npm install` (or `npm run build`) first' : error);
  process.exit(1);
});
