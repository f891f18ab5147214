#!/usr/bin/env node
// Load generator (`tsetcd-bench [flags]`) and etcd comparison (`tsetcd-bench compare [flags]`);
// the implementation is compiled TypeScript in dist/.
const [first, ...rest] = process.argv.slice(2);
const module = first === 'compare' ? '../dist/bench/compare.js' : '../dist/bench/load.js';
const args = first === 'compare' ? rest : process.argv.slice(2);
import(module).then(async (bench) => { process.exitCode = await bench.main(args); }).catch((error) => {
  console.error(error && error.code === 'ERR_MODULE_NOT_FOUND' ? 'tsetcd-bench is not built: run `npm install` (or `npm run build`) first' : error);
  process.exit(1);
});
