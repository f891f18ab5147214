#!/usr/bin/env node
// Load generator (`tsetcd-bench [flags]`), etcd comparisons (`tsetcd-bench all|compare|cluster [flags]`) and
// the one-client floor (`tsetcd-bench floor [flags]`); the implementation is compiled TypeScript in dist/.
const subcommands = {
  all: '../dist/bench/all.js',
  compare: '../dist/bench/compare.js',
  cluster: '../dist/bench/cluster.js',
  floor: '../dist/bench/floor.js',
};
const [first, ...rest] = process.argv.slice(2);
const module = subcommands[first] ?? '../dist/bench/load.js';
const args = first in subcommands ? rest : process.argv.slice(2);
import(module)
  .then(async (bench) => {
    process.exitCode = await bench.main(args);
  })
  .catch((error) => {
    console.error(
      error && error.code === 'ERR_MODULE_NOT_FOUND'
        ? 'tsetcd-bench is not built: run `npm install` (or `npm run build`) first'
        : error,
    );
    process.exit(1);
  });
