/**
 * The file `etcdctl snapshot save` writes from tsetcd has real etcd's layout: the same writes into
 * a fresh etcd 3.4 and a fresh tsetcd, saved after nothing, after a few keys and after a few
 * thousand keys put one at a time, give files whose buckets sit on the same pages in use (etcd
 * splits the key bucket's pages 90 % full), so `etcdctl snapshot status` prints the same for both
 * but the hash, which covers the members bucket (each member's own IDs and URLs), and the size:
 * etcd's file also keeps the pages its last commits freed, as many as its batch commits happened
 * to free (bench/RESULTS.md has the sizes matched on a quiet machine).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { EtcdGrpc } from '../support/etcd-grpc.js';
import { runCommand, runEtcdctl } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { endpointOf, ok, snapshotPageLayout } from '../support/snapshots.js';
import { etcdCommand, etcdctlBinaryPath, sutCommand, type MemberCommand } from '../support/sut.js';

const sut = sutCommand();

/** The key bucket spans a branch page over some fifty leaves at this many keys, as in etcd. */
const manyKeys = 3_000;

/** Puts keys `from` to `to` (exclusive) one at a time, each answered before the next goes. */
async function putKeys(member: Member, from: number, to: number): Promise<void> {
  const client = new EtcdGrpc(member.clientUrl, 30_000);
  try {
    for (let index = from; index < to; index++) {
      const answer = await client.unary('etcdserverpb.KV/Put', {
        key: Buffer.from(`key-${String(index).padStart(6, '0')}`),
        value: Buffer.from(`value-${index}`),
      });
      assert.equal(answer.code, 0, `put ${index}: ${answer.message}`);
    }
  } finally {
    client.close();
  }
}

/**
 * `etcdctl snapshot status` of `file` in table and json, and the file's page layout. The hash is
 * masked, and in the table its whole column, whose width follows the hash's digits.
 */
async function statusAndLayout(file: string): Promise<unknown> {
  const status = async (format: string): Promise<string> =>
    (await ok(runCommand(etcdctlBinaryPath, ['snapshot', 'status', file, '-w', format])))
      .replace(/"hash":\d+/, '"hash":<masked>')
      .replace(/"totalSize":\d+/, '"totalSize":<masked>')
      .replace(/^[+|][^+|]*(?=[+|])/gm, '<masked>')
      .replace(/\|[^|\n]*\d+(\.\d+)? [kMG]?B \|$/m, '| <size> |');
  const [pages = '', ...buckets] = snapshotPageLayout(file);
  return { table: await status('table'), json: await status('json'), layout: [inUse(pages), ...buckets] };
}

/**
 * "N pages, F free" as the pages in use. etcd's file also keeps the pages its last commits freed,
 * and how many depends on how its writes fell into its 100 ms batch commits: an empty member's file
 * had 5 pages with 2 free on a quiet machine and 7 with 4 free on a loaded one, the same 3 in use.
 */
function inUse(pagesLine: string): string {
  const match = /^(\d+) pages, (\d+) free$/.exec(pagesLine);
  assert.ok(match !== null, `expected "N pages, F free", saw ${JSON.stringify(pagesLine)}`);
  return `${Number(match[1]) - Number(match[2])} pages in use`;
}

test(
  "snapshots of the same writes from etcd and tsetcd have etcd's page layout, empty, with a few keys and with thousands",
  sut.command === undefined ? { skip: sut.skipReason } : {},
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tsetcd-snapshot-layout-'));
    const members: Member[] = [];
    try {
      const etcd = await Member.start({ command: etcdCommand() });
      members.push(etcd);
      const tsetcd = await Member.start({ command: sut.command as MemberCommand });
      members.push(tsetcd);
      const save = async (stage: string): Promise<unknown[]> => {
        const files = [join(dir, `etcd-${stage}.db`), join(dir, `tsetcd-${stage}.db`)];
        await ok(runEtcdctl(endpointOf(etcd), ['snapshot', 'save', files[0]!], { timeoutMs: 60_000 }));
        await ok(runEtcdctl(endpointOf(tsetcd), ['snapshot', 'save', files[1]!], { timeoutMs: 60_000 }));
        return Promise.all(files.map(statusAndLayout));
      };
      const stages: [string, number][] = [
        ['empty', 0],
        ['few', 3],
        ['many', manyKeys],
      ];
      let written = 0;
      for (const [stage, keys] of stages) {
        await Promise.all([putKeys(etcd, written, keys), putKeys(tsetcd, written, keys)]);
        written = keys;
        const [fromEtcd, fromTsetcd] = await save(stage);
        assert.deepEqual(fromTsetcd, fromEtcd, `the snapshots after ${stage} keys`);
      }
    } finally {
      for (const member of members) await member.destroy();
      await rm(dir, { recursive: true, force: true });
    }
  },
);
