#!/usr/bin/env node
// etcdctl-compatible command line client; the implementation is compiled TypeScript in dist/,
// run from its one-file bundle when the build made one (dist/ctl/bundle-loader.cjs chooses).
// CommonJS, as the loader is: an ESM entry costs a one-shot command about 16 ms of start-up.
'use strict';
let loader;
try {
  loader = require('../dist/ctl/bundle-loader.cjs');
} catch (error) {
  console.error(
    error && error.code === 'MODULE_NOT_FOUND'
      ? 'tsetcdctl is not built: run `npm install` (or `npm run build`) first'
      : error,
  );
  process.exit(1);
}
loader
  .loadCtl()
  .then((main) => main.run(process.argv.slice(2)))
  .catch((error) => {
    console.error(error);
    process.exit(1);
  });
