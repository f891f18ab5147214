#!/usr/bin/env node
// Load generator and etcd comparison; the implementation is compiled TypeScript in dist/.
import('../dist/bench/main.js').then((main) => main.run(process.argv.slice(2))).catch((error) => {
  console.error(error && error.code === 'ERR_MODULE_NOT_FOUND' ? 'tsetcd-bench is not built: run `npm install` (or `npm run build`) first' : error);
  process.exit(1);
});
