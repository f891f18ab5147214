/**
 * `tsetcd machines --export DIR` writes every machine a member runs as DIR/<id>.json: XState's
 * definition, with its states, which Stately's visualiser opens.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { packageRoot } from '../../src/lib/paths.js';

const run = promisify(execFile);
const launcher = join(packageRoot(), 'bin', 'tsetcd.js');

/** Each machine in machines/*.ts as `id: 'name'` right after createMachine({, found in the source. */
async function machineIdsInSource(): Promise<string[]> {
  const dir = join(packageRoot(), 'machines');
  const ids: string[] = [];
  for (const file of (await readdir(dir)).filter((name) => name.endsWith('.ts'))) {
    const source = await readFile(join(dir, file), 'utf8');
    for (const match of source.matchAll(/createMachine\(\{\s*id: '([^']+)'/g)) ids.push(match[1] as string);
  }
  return ids.sort();
}

interface StateDefinition {
  states: Record<string, StateDefinition>;
  on: Record<string, unknown>;
}

test('every machine is written as JSON that parses, with its states', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tsetcd-machines-'));
  try {
    const { stdout } = await run(process.execPath, [launcher, 'machines', '--export', dir]);
    const ids = await machineIdsInSource();
    assert.ok(ids.length >= 2, `expected the role and lifecycle machines in machines/, saw ${ids.join(', ')}`);
    const written = (await readdir(dir)).sort();
    assert.deepEqual(
      written,
      ids.map((id) => `${id}.json`),
    );
    assert.equal(stdout.trim().split('\n').length, ids.length);
    const definitions = new Map<string, StateDefinition>();
    for (const id of ids) definitions.set(id, JSON.parse(await readFile(join(dir, `${id}.json`), 'utf8')));
    const role = definitions.get('raftRole');
    assert.deepEqual(Object.keys(role?.states ?? {}), ['follower', 'preCandidate', 'candidate', 'leader']);
    assert.ok('ELECTION_TIMEOUT' in (role?.states.follower?.on ?? {}));
    const lifecycle = definitions.get('memberLifecycle');
    assert.deepEqual(Object.keys(lifecycle?.states ?? {}), [
      'starting',
      'serving',
      'removed',
      'failed',
      'stopping',
      'stopped',
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('tsetcd machines without --export prints its usage and exits 2', async () => {
  await assert.rejects(run(process.execPath, [launcher, 'machines']), (error: { code: number; stderr: string }) => {
    assert.equal(error.code, 2);
    assert.match(error.stderr, /tsetcd machines --export DIR/);
    return true;
  });
});
