#!/usr/bin/env node
// Starts a tsetcd member (or `tsetcd cluster`); the implementation is compiled TypeScript in dist/.
import('../dist/actors/main.js').then((main) => main.run(process.argv.slice(2))).catch((error) => {
  console.error(error && error.code === 'ERR_MODULE_NOT_FOUND' ? 'tsetcd is not built: run `npm install` (or `npm run build`) first' : error);
  process.exit(1);
});
