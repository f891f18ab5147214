#!/bin/sh
':' //; if [ -n "${NODE_EXTRA_CA_CERTS+set}" ]; then TSETCDCTL_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS; export TSETCDCTL_EXTRA_CA_CERTS; unset NODE_EXTRA_CA_CERTS; fi; exec node "$0" "$@"
// etcdctl-compatible command line client; the implementation is compiled TypeScript in dist/,
// run from its one-file bundle when the build made one (dist/ctl/bundle-loader.cjs chooses).
// CommonJS, as the loader is: an ESM entry costs a one-shot command about 16 ms of start-up.
//
// This file is a shell script and a CommonJS module at once. Started as a program (npm's bin link,
// npx, PATH), the shell runs the line above: it hands NODE_EXTRA_CA_CERTS to node under another
// name, because Node parses that bundle and its own root certificates at every start (40-60 ms),
// and tsetcdctl adds those certificates itself when a TLS connection first verifies against the
// default roots (ctl/extra-ca-certs.ts). For JavaScript that line is a string and a comment, so
// `node bin/tsetcdctl.cjs` runs the code below directly (Node then reads the bundle itself).
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
