#!/bin/sh
# npm test's checks before the suite, run side by side since each is one process on its own core:
# the build (incremental over what `npm ci` or an earlier run compiled, then prune-dist removes output
# whose source is gone, then the schemas' validators are written as code and tsetcdctl's and the member thread's bundles are made anew), prettier --check and eslint. Each one's
# output is printed once all are done, in that order; the script fails when any of them failed.
set -u
cd "$(dirname "$0")/../.."
# npm puts the local binaries on PATH; so does this, for a run outside npm.
PATH="$PWD/node_modules/.bin:$PATH"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
(tsc -p tsconfig.json && node dist/test/support/prune-dist.js && node dist/actors/supervisor/schema-build.js && node dist/ctl/bundle-build.js && node dist/actors/supervisor/thread-bundles-build.js) >"$out/build" 2>&1 &
build=$!
prettier --check . --log-level warn >"$out/prettier" 2>&1 &
prettier=$!
eslint . >"$out/eslint" 2>&1 &
eslint=$!
failed=''
wait "$build" || failed="$failed build"
wait "$prettier" || failed="$failed prettier"
wait "$eslint" || failed="$failed eslint"
cat "$out/build" "$out/prettier" "$out/eslint"
if [ -n "$failed" ]; then
  echo "failed:$failed" >&2
  exit 1
fi
