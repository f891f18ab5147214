/**
 * The watch guarantees end to end: concurrent writers through the KV service, watchers of every
 * kind (etcd3, raw streams, etcdctl) from now and from history, a compaction in the middle and a
 * cancel-and-resume. Each must receive exactly the applied events of its range from its start
 * revision: no gap, no duplicate, in order.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { EtcdctlWatch, RawWatch, waitUntil } from './clients.js';
import { WatchTestHost } from './host.js';

const writers = 3;
const writesPerWriter = 120;
const keyCount = 8;

/** The applied events of `inRange` keys from `from` on, as "TYPE key@rev". */
function expected(host: WatchTestHost, from: number, inRange: (key: string) => boolean): string[] {
  return host.history.filter((line) => {
    const [, key, rev] = /^\S+ (.*)@(\d+)$/.exec(line)!;
    return Number(rev) >= from && inRange(key!);
  });
}

async function writer(client: Etcd3, id: number): Promise<void> {
  for (let i = 0; i < writesPerWriter; i++) {
    const key = `g/${(id * 7 + i) % keyCount}`;
    if (i % 5 === 4) await client.delete().key(key);
    else await client.put(key).value(`w${id}-${i}`);
  }
}

test('concurrent writers, a compaction and a resume leave every watcher with exactly the applied events', async () => {
  const host = new WatchTestHost({ syncEventsMax: 7 });
  await host.start();
  const client = new Etcd3({ hosts: `http://${host.endpoint}` });
  const raw = new RawWatch(host.endpoint);
  for (let i = 0; i < 30; i++) host.putKey(`g/${i % keyCount}`, `pre${i}`);
  const live = host.store.currentRevision + 1;
  const etcdctl = new EtcdctlWatch(host.endpoint, ['--prefix', '--rev', '5', '-w', 'json', 'g/']);
  let jsWatcher: Awaited<ReturnType<ReturnType<Etcd3['watch']>['create']>> | undefined;
  try {
    const jsSeen: string[] = [];
    jsWatcher = await client.watch().prefix('g/').startRevision(String(live)).create();
    jsWatcher.on('put', (kv) => jsSeen.push(`PUT ${kv.key.toString()}@${kv.mod_revision}`));
    jsWatcher.on('delete', (kv) => jsSeen.push(`DELETE ${kv.key.toString()}@${kv.mod_revision}`));
    raw.create({ key: Buffer.from([0]), rangeEnd: Buffer.from([0]), startRevision: '2', watchId: '1' });
    raw.create({ key: Buffer.from('g/3'), startRevision: '12', watchId: '2' });
    raw.create({ key: Buffer.from('g/'), rangeEnd: Buffer.from('g0'), startRevision: '10', watchId: '3' });

    const writing = Array.from({ length: writers }, (_, id) => writer(client, id));
    // Resume: once watch 3 has seen some events, cancel it and continue from the revision after its last one.
    await raw.waitFor(() => raw.events(3).length >= 40, 'watch 3 to see 40 events');
    raw.cancel(3);
    await raw.waitFor(() => raw.of(3).some((response) => response.canceled === true), 'watch 3 to be canceled');
    const resumeFrom = Number(/@(\d+)$/.exec(raw.events(3).at(-1)!)![1]) + 1;
    raw.create({
      key: Buffer.from('g/'),
      rangeEnd: Buffer.from('g0'),
      startRevision: String(resumeFrom),
      watchId: '4',
    });
    await raw.waitFor(() => raw.of(4).length > 0, 'watch 4 to be created');
    host.compactTo(host.store.currentRevision - 3);
    await Promise.all(writing);

    const final = host.store.currentRevision;
    const lastRevisionOf = (events: string[]): number => Number(/@(\d+)$/.exec(events.at(-1) ?? '@0')![1]);
    const prefixLast = lastRevisionOf(expected(host, 1, (key) => key.startsWith('g/')));
    const ctlEvents = (): string[] =>
      etcdctl
        .json()
        .flatMap((response) =>
          ((response.Events ?? []) as Array<{ type?: number; kv: { key: string; mod_revision: number } }>).map(
            (event) =>
              `${event.type === 1 ? 'DELETE' : 'PUT'} ${Buffer.from(event.kv.key, 'base64').toString()}@${event.kv.mod_revision}`,
          ),
        );
    await waitUntil(
      () =>
        lastRevisionOf(jsSeen) === prefixLast &&
        lastRevisionOf(raw.events(1)) === final &&
        lastRevisionOf(raw.events(4)) === prefixLast &&
        lastRevisionOf(ctlEvents()) === prefixLast,
      'every watcher to reach the last write',
    );
    const isPrefix = (key: string): boolean => key.startsWith('g/');
    assert.deepEqual(jsSeen, expected(host, live, isPrefix), 'etcd3 prefix watcher from now');
    assert.deepEqual(
      raw.events(1),
      expected(host, 2, () => true),
      'every key from revision 2',
    );
    assert.deepEqual(
      [...raw.events(3), ...raw.events(4)],
      expected(host, 10, isPrefix),
      'a prefix watch resumed after a cancel',
    );
    assert.deepEqual(ctlEvents(), expected(host, 5, isPrefix), 'etcdctl --prefix --rev 5');
    await waitUntil(
      () => lastRevisionOf(raw.events(2)) === lastRevisionOf(expected(host, 12, (key) => key === 'g/3')),
      'watch 2',
    );
    assert.deepEqual(
      raw.events(2),
      expected(host, 12, (key) => key === 'g/3'),
      'one key from revision 12',
    );
    assert.equal(
      raw.responses.some((response) => response.compactRevision !== '0'),
      false,
      'no watcher was behind the compaction',
    );
  } finally {
    await jsWatcher?.cancel();
    raw.close();
    client.close();
    await etcdctl.stop();
    await host.stop();
  }
});
