/**
 * The dashboard in headless Chromium (Debian's /usr/bin/chromium driven by playwright-core; no
 * browser is downloaded). A 3-process cluster: the page on a follower shows three members and one
 * leader; after kill -9 of the leader its timeline shows the new leader and the dead member is
 * marked unreachable. Single-host mode (`tsetcd cluster --members 3`): the page shows three members
 * and one leader, and after etcdctl move-leader its timeline shows the new leader. Each test saves
 * a screenshot in its temp dir and prints the path.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Cluster, endpointStatus, pollUntil } from '../support/cluster.js';
import { runEtcdctl } from '../support/etcdctl.js';
import { probeHealth } from '../support/member.js';
import { busyPorts, loopbackHost } from '../support/ports.js';
import { sutCommand } from '../support/sut.js';

const chromiumPath = '/usr/bin/chromium';
/** Bound on the page showing what a step expects (a new election takes a few election timeouts). */
const pageWaitMs = 30_000;
/** Bound on the members becoming healthy; generous, as Chromium shares the machine with them. */
const startWaitMs = 60_000;
const singleHostClientPorts = [2379, 22379, 32379];

const sut = sutCommand();
const skipReason =
  sut.command === undefined
    ? sut.skipReason
    : existsSync(chromiumPath)
      ? undefined
      : `${chromiumPath} is missing (Debian's chromium package; test/support/ensure-tools.sh installs it as root)`;
if (skipReason !== undefined) console.log(`dashboard browser tests skipped: ${skipReason}`);

/** What the page's members table shows: each row's name, ID, role cell and state. */
interface PageRow {
  name: string;
  id: string;
  leader: boolean;
  reachable: boolean;
}

async function pageRows(page: Page): Promise<PageRow[]> {
  return page.$$eval('#members tbody tr', (rows) =>
    rows.map((row) => ({
      name: String(row.children[0]?.textContent ?? ''),
      id: String(row.getAttribute('data-member') ?? ''),
      leader: Boolean(row.classList.contains('leader')),
      reachable: row.getAttribute('data-reachable') === 'true',
    })),
  );
}

/** Waits until the table shows `count` rows with exactly one leader, which it returns. */
async function oneLeaderOf(page: Page, count: number): Promise<PageRow> {
  // Page-side code is given as text: the test compiles without the DOM's types.
  const rows = "document.querySelectorAll('#members tbody tr')";
  const leaders = "document.querySelectorAll('#members tbody tr.leader')";
  await page.waitForFunction(`${rows}.length === ${count} && ${leaders}.length === 1`, undefined, {
    timeout: pageWaitMs,
  });
  const leader = (await pageRows(page)).find((row) => row.leader);
  assert.ok(leader !== undefined);
  return leader;
}

/** The highest term the timeline shows so far. */
async function timelineTerm(page: Page): Promise<number> {
  const terms = await page.$$eval('#timeline li', (items) =>
    items.map((item) => Number(item.getAttribute('data-term'))),
  );
  return Math.max(0, ...terms);
}

/** Waits until the timeline shows a member other than `oldLeaderId` becoming leader after `term`; returns its ID. */
async function newLeaderInTimeline(page: Page, oldLeaderId: string, term: number): Promise<string> {
  assert.match(oldLeaderId, /^[0-9a-f]+$/);
  const found = `[...document.querySelectorAll('#timeline li[data-to="leader"]')]
    .find((item) => item.dataset.member !== '${oldLeaderId}' && Number(item.dataset.term) > ${term})
    ?.dataset.member`;
  const handle = await page.waitForFunction(found, undefined, { timeout: pageWaitMs });
  return String(await handle.jsonValue());
}

/** Waits until the row of member `id` says unreachable. */
async function shownUnreachable(page: Page, id: string): Promise<void> {
  await page.waitForSelector(`#members tr[data-member="${id}"][data-reachable="false"]`, { timeout: pageWaitMs });
}

async function screenshot(page: Page, dir: string, name: string): Promise<void> {
  const path = join(dir, name);
  await page.screenshot({ path, fullPage: true });
  console.log(`dashboard screenshot: ${path}`);
}

describe('the dashboard in headless Chromium', skipReason === undefined ? {} : { skip: skipReason }, () => {
  let browser: Browser;

  before(async () => {
    browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
  });

  after(async () => {
    await browser?.close();
  });

  test('in a 3-process cluster a follower shows the new leader after kill -9 of the leader, and the dead member unreachable', async () => {
    const shotDir = await mkdtemp(join(tmpdir(), 'tsetcd-dashboard-cluster-'));
    const cluster = await Cluster.start({ command: sut.command!, healthWaitMs: startWaitMs });
    const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
    try {
      const leader = await cluster.leader();
      const observer = cluster.followers(leader)[0]!;
      await page.goto(`${observer.clientUrl}/dashboard`);
      const shownLeader = await oneLeaderOf(page, 3);
      assert.equal(shownLeader.name, leader.name);
      const rows = await pageRows(page);
      assert.deepEqual(rows.map((row) => row.name).sort(), ['m1', 'm2', 'm3']);
      assert.deepEqual(
        rows.map((row) => row.reachable),
        [true, true, true],
      );
      const term = await timelineTerm(page);
      assert.ok(term > 0, 'the timeline shows the first election');
      await leader.kill9();
      const newLeaderId = await newLeaderInTimeline(page, shownLeader.id, term);
      await shownUnreachable(page, shownLeader.id);
      const after = await oneLeaderOf(page, 3);
      assert.equal(after.id, newLeaderId);
      assert.notEqual(after.name, leader.name);
      assert.equal((await cluster.leader()).name, after.name, 'the page names the leader etcdctl reports');
      await screenshot(page, shotDir, 'dashboard-cluster.png');
    } catch (error) {
      await screenshot(page, shotDir, 'dashboard-cluster-failed.png');
      throw new Error(`${(error as Error).message}\n${cluster.logTails()}`);
    } finally {
      await page.close();
      await cluster.destroy();
    }
  });

  test('in single-host mode the page shows three members and, after move-leader, the new leader', async (t) => {
    const busy = await busyPorts([...singleHostClientPorts, 2380, 22380, 32380]);
    if (busy.length > 0) return t.skip(`single-host ports in use: ${busy.join(', ')}`);
    const shotDir = await mkdtemp(join(tmpdir(), 'tsetcd-dashboard-single-host-'));
    const workDir = await mkdtemp(join(tmpdir(), 'tsetcd-dashboard-single-host-data-'));
    const command = sut.command!;
    let child: ChildProcess | undefined;
    const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
    try {
      child = spawn(command.command, [...command.args, 'cluster', '--members', '3'], { cwd: workDir, stdio: 'ignore' });
      const endpoints = singleHostClientPorts.map((port) => `http://${loopbackHost}:${port}`);
      for (const endpoint of endpoints)
        await pollUntil(`member at ${endpoint} healthy`, startWaitMs, () => probeHealth(endpoint));
      await page.goto(`${endpoints[0]}/dashboard`);
      const leader = await oneLeaderOf(page, 3);
      const target = (await pageRows(page)).find((row) => !row.leader)!;
      const statuses = await Promise.all(endpoints.map((endpoint) => endpointStatus(endpoint)));
      const leaderEndpoint = endpoints[statuses.findIndex((status) => status.memberId === status.leaderId)]!;
      const term = await timelineTerm(page);
      const moved = await runEtcdctl(leaderEndpoint, ['move-leader', target.id]);
      assert.equal(moved.code, 0, moved.stderr);
      assert.equal(await newLeaderInTimeline(page, leader.id, term), target.id);
      assert.equal((await oneLeaderOf(page, 3)).id, target.id);
      await screenshot(page, shotDir, 'dashboard-single-host.png');
    } catch (error) {
      await screenshot(page, shotDir, 'dashboard-single-host-failed.png');
      throw error;
    } finally {
      await page.close();
      child?.kill('SIGKILL');
      await rm(workDir, { recursive: true, force: true });
    }
  });
});
