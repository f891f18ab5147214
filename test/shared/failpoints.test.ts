/**
 * The failpoint gate and registry (actors/shared/failpoints.ts) in child processes, so each one
 * reads its own GOFAIL_FAILPOINTS: actions, counts, a panic in a worker thread ending the whole
 * process as Go's does, changes reaching a busy worker thread, and nothing loaded without the switch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

const gateUrl = new URL('../../actors/shared/failpoints.js', import.meta.url).href;
const registryUrl = new URL('../../actors/shared/failpoint-registry.js', import.meta.url).href;
/** How long one child may run. */
const childTimeoutMs = 20_000;

/** Runs `source` as an ES module in a new node with `failpoints` as GOFAIL_FAILPOINTS (unset when undefined). */
function runChild(
  source: string,
  failpoints: string | undefined,
): { status: number | null; stdout: string; stderr: string } {
  const env = { ...process.env };
  delete env.GOFAIL_FAILPOINTS;
  delete env.GOFAIL_HTTP;
  if (failpoints !== undefined) env.GOFAIL_FAILPOINTS = failpoints;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', source], {
    env,
    encoding: 'utf8',
    timeout: childTimeoutMs,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('without the switch the gate is off and the registry is never loaded', () => {
  const child = runChild(
    `import { failpointsOn, failpoint } from '${gateUrl}';
     failpoint('walBeforeSync');
     console.log(JSON.stringify({ failpointsOn }));`,
    undefined,
  );
  assert.equal(child.status, 0, child.stderr);
  assert.equal(child.stdout.trim(), '{"failpointsOn":false}');
  assert.doesNotMatch(child.stderr, /failpoints enabled/);
});

test('return(EIO) throws an error shaped like the file system one, and N* counts the hits', () => {
  const child = runChild(
    `import { failpoint } from '${gateUrl}';
     const seen = [];
     for (let hit = 0; hit < 3; hit++) {
       try { failpoint('walBeforeSync'); seen.push('ok'); } catch (error) { seen.push(error.code + ' ' + error.message); }
     }
     console.log(JSON.stringify(seen));`,
    'walBeforeSync=2*return(EIO)',
  );
  assert.equal(child.status, 0, child.stderr);
  assert.deepEqual(JSON.parse(child.stdout), [
    'EIO EIO: i/o error, failpoint walBeforeSync',
    'EIO EIO: i/o error, failpoint walBeforeSync',
    'ok',
  ]);
  assert.match(child.stderr, /"msg":"failpoints enabled"/);
});

test('a panic in a worker thread ends the whole process with exit code 2, naming the point', () => {
  const child = runChild(
    // The main thread loads the gate as tsetcd's supervisor does; it ends the process for the worker.
    `import { Worker } from 'node:worker_threads';
     await import('${gateUrl}');
     new Worker("import('${gateUrl}').then((gate) => gate.failpoint('raftBeforeSave'))", { eval: true });
     setInterval(() => {}, 1000);`,
    'raftBeforeSave=panic',
  );
  assert.equal(child.status, 2, child.stderr);
  assert.match(child.stderr, /^panic: failpoint panic: raftBeforeSave$/m);
});

test('a point set at runtime reaches a worker thread that never yields to its event loop', () => {
  // The worker hits the point in a loop without returning to its event loop, as a busy WAL thread
  // does; the change must still reach it. It reports the first hit that threw.
  const worker = `(async () => {
    const { parentPort } = await import('node:worker_threads');
    const gate = await import('${gateUrl}');
    parentPort.postMessage('started');
    const shared = new Int32Array(await new Promise((resolve) => parentPort.once('message', resolve)));
    for (let hit = 0; hit < 1e7; hit++) {
      try { gate.failpoint('walAfterSync'); } catch (error) { parentPort.postMessage(error.message); break; }
      if (hit === 0) Atomics.store(shared, 0, 1);
    }
  })()`;
  const child = runChild(
    `import { Worker } from 'node:worker_threads';
     const registry = await import('${registryUrl}');
     const worker = new Worker(${JSON.stringify(worker)}, { eval: true });
     const shared = new Int32Array(new SharedArrayBuffer(4));
     worker.once('message', () => {
       worker.postMessage(shared.buffer);
       while (Atomics.load(shared, 0) === 0) Atomics.wait(shared, 0, 0, 10);
       registry.setFailpoint('walAfterSync', 'return(changed at runtime)');
     });
     worker.on('message', (text) => { if (text !== 'started') { console.log(text); process.exit(0); } });`,
    'walAfterSync=off',
  );
  assert.equal(child.status, 0, child.stderr);
  assert.equal(child.stdout.trim(), 'changed at runtime');
});
