/**
 * Test ports are reserved across processes: test files run side by side draw from one range, and a
 * port one drew must not go to another before its member binds it. Each run here is a separate
 * node process on a narrowed range of 20 ports with its own reservation directory.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

const portsModule = new URL('ports.js', import.meta.url).href;
/** Outside the suite's own range (10000-21999) and single-host mode's 22379/22380. */
const rangeFirst = 22_100;
const rangeSize = 20;

/** A process that draws `count` ports, prints them (or the error) and, with `hold`, waits for stdin to end. */
function drawing(dir: string, count: number, hold: boolean): ChildProcess {
  const script = `
    const { freePorts } = await import(${JSON.stringify(portsModule)});
    try { console.log(JSON.stringify(await freePorts(${count}))); }
    catch (error) { console.log(JSON.stringify(error.message)); }
    if (${hold}) { process.stdin.resume(); await new Promise((done) => process.stdin.on('end', done)); }`;
  return spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: {
      ...process.env,
      TSETCD_TEST_PORT_RANGE: `${rangeFirst}-${rangeFirst + rangeSize - 1}`,
      TSETCD_TEST_PORT_DIR: dir,
    },
  });
}

/** The first line the process prints, parsed. */
async function answer(child: ChildProcess): Promise<unknown> {
  let text = '';
  for await (const chunk of child.stdout!) {
    text += String(chunk);
    if (text.includes('\n')) break;
  }
  return JSON.parse(text.split('\n')[0]!);
}

/** Runs a drawing process to its end and returns what it printed. */
async function drawOnce(dir: string, count: number): Promise<unknown> {
  const child = drawing(dir, count, false);
  const [printed] = await Promise.all([answer(child), once(child, 'exit')]);
  return printed;
}

const sorted = (ports: unknown): number[] => [...(ports as number[])].sort((a, b) => a - b);

describe("test ports' reservations", () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsetcd-ports-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('no port goes to two live processes; an exited one gives its ports back, a killed one loses them', async () => {
    const holder = drawing(dir, 10, true);
    const held = sorted(await answer(holder));
    assert.equal(new Set(held).size, 10);
    try {
      // The holder released its listeners: only the reservation keeps these ports from the next process.
      const others = sorted(await drawOnce(dir, 10));
      assert.deepEqual(
        sorted([...held, ...others]),
        Array.from({ length: rangeSize }, (_, i) => rangeFirst + i),
        `held ${held.join(',')}, then drawn ${others.join(',')}`,
      );
      // That process exited and gave its ten back: they are all there is to draw now.
      assert.deepEqual(sorted(await drawOnce(dir, 10)), others);
      assert.deepEqual((await readdir(dir)).map(Number).sort(), held);
      // Ten more than the range has free.
      assert.match(String(await drawOnce(dir, 11)), /^expected 11 free ports in 22100-22119, found 10$/);
    } finally {
      holder.kill('SIGKILL');
      await once(holder, 'exit');
    }
    // Killed, the holder left its files behind; they belong to no live process and are taken over.
    assert.equal((await readdir(dir)).length, 10);
    assert.equal(((await drawOnce(dir, rangeSize)) as number[]).length, rangeSize);
  });
});
