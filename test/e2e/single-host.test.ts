/**
 * Single-host mode: `tsetcd cluster --members 3` runs three members as worker threads of one
 * process on etcd's Procfile client ports (2379, 22379, 32379), linked by MessagePorts. Real etcdctl
 * sees three started members, writes through any member read back through every other, and the
 * lease calls a follower hands to the leader (keep-alive, time-to-live) work through a follower.
 * Each member logs etcd's start stages in etcd's order: it serves clients only once published.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { endpointStatus, pollUntil } from '../support/cluster.js';
import { runEtcdctl } from '../support/etcdctl.js';
import { probeHealth } from '../support/member.js';
import { busyPorts } from '../support/ports.js';
import { sutCommand } from '../support/sut.js';
import { logRecordsOf, startStagesOf } from '../support/start-milestones.js';

const clientPorts = [2379, 22379, 32379];
const endpoints = clientPorts.map((port) => `127.0.0.1:${port}`);
/** Bound on the three members becoming healthy, and on SIGTERM stopping the process. */
const startWaitMs = 20_000;
const stopWaitMs = 10_000;

const sut = sutCommand();
const portsBusy = await busyPorts([...clientPorts, 2380, 22380, 32380]);
const skip =
  sut.command === undefined
    ? sut.skipReason
    : portsBusy.length > 0
      ? `single-host ports in use: ${portsBusy.join(', ')}`
      : undefined;

describe('tsetcd cluster --members 3 (single-host mode)', skip === undefined ? {} : { skip }, () => {
  let workDir: string;
  let child: ChildProcess;
  let exited: Promise<string>;

  before(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'tsetcd-single-host-test-'));
    const command = sut.command!;
    const logFd = openSync(join(workDir, 'cluster.log'), 'a');
    try {
      child = spawn(command.command, [...command.args, 'cluster', '--members', '3'], {
        cwd: workDir,
        stdio: ['ignore', logFd, logFd],
      });
    } finally {
      closeSync(logFd);
    }
    exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(`exit ${code} ${signal}`)));
    for (const endpoint of endpoints)
      await pollUntil(`member at ${endpoint} healthy`, startWaitMs, () => probeHealth(`http://${endpoint}`));
  });

  after(async () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await rm(workDir, { recursive: true, force: true });
  });

  test("etcdctl member list shows three started members with etcd's Procfile names and URLs", async () => {
    await pollUntil('every member published its client URLs', startWaitMs, async () => {
      const result = await runEtcdctl(endpoints[1]!, ['member', 'list']);
      const lines = result.stdout
        .trim()
        .split('\n')
        .map((line) => line.split(', ').slice(1).join(', '))
        .sort();
      const expected = [1, 2, 3].map(
        (n) =>
          `started, infra${n}, http://127.0.0.1:${n === 1 ? '' : n}2380, http://127.0.0.1:${n === 1 ? '' : n}2379, false`,
      );
      return result.code === 0 && JSON.stringify(lines) === JSON.stringify(expected)
        ? ''
        : `${result.stdout}${result.stderr}`;
    });
  });

  test("each member logs etcd's start stages in etcd's order: published, then serving clients", async () => {
    for (const name of ['infra1', 'infra2', 'infra3']) {
      // A member that waited long for the others to elect a leader also logs failed publishes.
      const stages = startStagesOf(logRecordsOf(join(workDir, 'cluster.log'), name)).filter(
        (stage) => stage !== 'publish failed',
      );
      assert.deepEqual(stages, ['listening', 'published', 'serving clients'], name);
    }
  });

  test('a put through each member is read back through every member', async () => {
    for (const [i, writer] of endpoints.entries()) {
      const put = await runEtcdctl(writer, ['put', `single/${i}`, `via-${i}`]);
      assert.equal(put.code, 0, put.stderr);
      for (const reader of endpoints) {
        const get = await runEtcdctl(reader, ['get', `single/${i}`, '--print-value-only']);
        assert.equal(get.stdout, `via-${i}\n`, `read through ${reader} of a put through ${writer}: ${get.stderr}`);
      }
    }
  });

  test('lease keep-alive and time-to-live through a follower reach the leader', async () => {
    const follower = await followerEndpoint();
    const grant = await runEtcdctl(follower, ['lease', 'grant', '60']);
    assert.equal(grant.code, 0, grant.stderr);
    const id = /lease ([0-9a-f]+) granted with TTL\(60s\)/.exec(grant.stdout)?.[1];
    assert.ok(id !== undefined, `lease grant output: ${grant.stdout}`);
    const keepAlive = await runEtcdctl(follower, ['lease', 'keep-alive', '--once', id]);
    assert.equal(keepAlive.code, 0, keepAlive.stderr);
    assert.equal(keepAlive.stdout, `lease ${id} keepalived with TTL(60)\n`);
    const ttl = await runEtcdctl(follower, ['lease', 'timetolive', id]);
    assert.equal(ttl.code, 0, ttl.stderr);
    assert.match(ttl.stdout, new RegExp(`^lease ${id} granted with TTL\\(60s\\), remaining\\((59|60)s\\)\\n$`));
    const missing = await runEtcdctl(follower, ['lease', 'keep-alive', '--once', 'abc']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /requested lease not found/);
  });

  test('SIGTERM stops all three members, then ends the process by the signal, as etcd ends', async () => {
    child.kill('SIGTERM');
    const code = await Promise.race([
      exited,
      new Promise<string>((resolve) => setTimeout(() => resolve('still running'), stopWaitMs).unref()),
    ]);
    assert.equal(code, 'exit null SIGTERM');
  });
});

/** The client endpoint of a member that is not the leader, from etcdctl endpoint status. */
async function followerEndpoint(): Promise<string> {
  for (const endpoint of endpoints) {
    const status = await endpointStatus(endpoint);
    if (status.leaderId !== '0' && status.memberId !== status.leaderId) return endpoint;
  }
  throw new Error('no member reports a leader other than itself');
}
