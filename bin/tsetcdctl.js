#!/usr/bin/env node
// etcdctl-compatible command line client; the implementation is compiled TypeScript in dist/,
// run from its one-file bundle when the build made one (dist/ctl/bundle-loader.js chooses).
import('../dist/ctl/bundle-loader.js')
  .then((loader) => loader.loadCtl())
  .then((main) => main.run(process.argv.slice(2)))
  .catch((error) => {
    console.error(
      error && error.code === 'ERR_MODULE_NOT_FOUND'
        ? 'tsetcdctl is not built: run `npm install` (or `npm run build`) first'
        : error,
    );
    process.exit(1);
  });
