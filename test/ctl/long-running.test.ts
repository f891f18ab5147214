/**
 * The commands that keep running (watch, lock, elect): etcdctl against a real etcd, tsetcdctl
 * against another etcd and tsetcdctl against tsetcd are started with the same arguments, driven by the same etcdctl commands, waited
 * on until they have said what the scenario expects and then ended as a user ends them (SIGTERM,
 * or their stdin closing); what they printed and their exit status must agree once IDs are
 * normalised. Waits are on output, never on time.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runEtcdctl } from '../support/etcdctl.js';
import { afterFirstField, protobufText, splitMessages } from '../support/proto-text.js';
import { Running } from '../support/running.js';
import { Member } from '../support/member.js';
import { etcdCommand, etcdctlBinaryPath, sutCommand, tsetcdctlBinPath } from '../support/sut.js';

/** Polls `check` until it holds, a bounded number of times. */
async function until(check: () => Promise<boolean>): Promise<void> {
  const pollsMax = 200;
  for (let poll = 0; poll < pollsMax; poll++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`expected the condition to hold within ${pollsMax} polls`);
}

/** Polls until `count` candidates have keys under the election's `prefix`. */
async function untilCandidates(on: Side, prefix: string, count: number): Promise<void> {
  const endpoint = `127.0.0.1:${on.member.clientPort}`;
  await until(async () =>
    (await runEtcdctl(endpoint, ['get', prefix, '--prefix', '--keys-only', '-w', 'fields'])).stdout.includes(
      `"Count" : ${count}\n`,
    ),
  );
}

/** One server and the client that goes with it. */
interface Side {
  readonly member: Member;
  readonly start: (args: readonly string[]) => Running;
  /** Starts the client with these --endpoints instead of the server's own. */
  readonly startWithEndpoints: (endpoints: string, args: readonly string[]) => Running;
  readonly drive: (...args: string[]) => Promise<void>;
}

function side(member: Member, client: 'etcdctl' | 'tsetcdctl'): Side {
  const startWithEndpoints = (endpoints: string, args: readonly string[]): Running => {
    const [command, prefix] = client === 'etcdctl' ? [etcdctlBinaryPath, []] : [process.execPath, [tsetcdctlBinPath]];
    const child = spawn(command, [...prefix, `--endpoints=${endpoints}`, ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    started.add(child);
    return new Running(child);
  };
  const drive = async (...args: string[]): Promise<void> => {
    const result = await runEtcdctl(`127.0.0.1:${member.clientPort}`, args);
    assert.equal(result.code, 0, `expected etcdctl ${args.join(' ')} to succeed, saw ${result.stderr}`);
  };
  const start = (args: readonly string[]): Running => startWithEndpoints(`127.0.0.1:${member.clientPort}`, args);
  return { member, start, startWithEndpoints, drive };
}

/**
 * Member, cluster and lease IDs differ between the two servers; everything else must not. clientv3
 * logs a cancelled retry when a signal ends a unary call still in flight, which a race between the
 * signal and the call's answer decides, so that one warning is left out on both sides.
 */
function normalise(text: string): string {
  return text
    .replace(
      /^\{"level":"warn"[^\n]*"msg":"retrying of unary invoker failed"[^\n]*code = Canceled desc = context canceled"\}\n/gm,
      '',
    )
    .replace(/"(cluster_id|member_id)":\d+/g, '"$1":<id>')
    .replace(/"lease":\d+/g, '"lease":<lease>')
    .replace(/"(ClusterID|MemberID)" : \d+/g, '"$1" : <id>')
    .replace(/\/[0-9a-f]{12,16}\b/g, '/<lease>')
    .replace(/"key":"[A-Za-z0-9+/=]+"/g, (match) => {
      const key = Buffer.from(match.slice(7, -1), 'base64')
        .toString()
        .replace(/\/[0-9a-f]{12,16}$/, '/<lease>');
      return `"key":${JSON.stringify(key)}`;
    });
}

/**
 * A scenario whose awaited output never comes fails after this long instead of holding the e2e
 * lock forever; it is a bound on a hang, not a measure of speed (scenarios take about a second).
 */
const scenarioTimeoutMs = 60_000;

/** Every client started, so that none outlives the file when a scenario fails half-way. */
const started = new Set<ChildProcessWithoutNullStreams>();

describe('long-running tsetcdctl commands behave as etcdctl does', { timeout: scenarioTimeoutMs * 12 }, () => {
  let sides: [reference: Side, ...subjects: Side[]];

  /**
   * Runs `scenario` the three ways at once (etcdctl against etcd, tsetcdctl against another etcd
   * and against tsetcd) and compares what each returns with the reference's transcript.
   */
  async function same(scenario: (on: Side) => Promise<string>): Promise<void> {
    const [expected, ...actuals] = await Promise.all(sides.map(scenario));
    for (const [index, actual] of actuals.entries())
      assert.equal(normalise(actual), normalise(expected ?? ''), `tsetcdctl against ${['etcd', 'tsetcd'][index]}`);
  }

  before(async () => {
    const tsetcd = sutCommand().command;
    assert.ok(tsetcd !== undefined, 'expected tsetcd to be built');
    const [etcd, otherEtcd, ours] = await Promise.all([
      Member.start({ command: etcdCommand() }),
      Member.start({ command: etcdCommand() }),
      Member.start({ command: tsetcd }),
    ]);
    sides = [side(etcd, 'etcdctl'), side(otherEtcd, 'tsetcdctl'), side(ours, 'tsetcdctl')];
    // Revisions 2 to 5 on both servers, for watches that start in the past.
    await Promise.all(
      sides.map(async (on) => {
        await on.drive('put', 'w/a', '1');
        await on.drive('put', 'w/b', 'two words');
        await on.drive('put', 'w/a', '3');
        await on.drive('del', 'w/b');
      }),
    );
  });

  after(async () => {
    for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await Promise.all((sides ?? []).map((on) => on.member.destroy()));
  });

  for (const format of ['simple', 'json', 'fields']) {
    it(
      `watch --prefix --prev-kv --rev replays history and follows new events (-w ${format})`,
      { timeout: scenarioTimeoutMs },
      () =>
        same(async (on) => {
          const watch = on.start(['watch', 'w/', '--prefix', '--prev-kv', '--rev', '2', '-w', format]);
          // Waits for the last line of the last event, so that the signal never cuts an answer short.
          const [last, times] = {
            simple: ['DELETE\nw/b\ntwo words\nw/b\n\n', 1],
            json: ['"type":1', 1],
            fields: ['"Lease" : 0', 4],
          }[format] ?? ['', 1];
          await watch.waitFor(String(last), Number(times));
          return watch.end('SIGTERM');
        }),
    );
  }

  it(
    'watch --prefix --prev-kv --rev -w protobuf prints each response as etcdctl encodes it',
    { timeout: scenarioTimeoutMs },
    () =>
      same(async (on) => {
        const watch = on.start(['watch', 'w/', '--prefix', '--prev-kv', '--rev', '2', '-w', 'protobuf']);
        // The value of the put of w/b and the previous value of its delete.
        await watch.waitFor('two words', 2);
        const said = await watch.end('SIGTERM');
        // Responses are printed unframed; each is shown decoded without the member's IDs, and its
        // bytes after the header (which holds those IDs) as they were printed.
        const responses = splitMessages('etcdserverpb.WatchResponse', watch.stdoutBytes).map(
          (bytes) =>
            `${protobufText('etcdserverpb.WatchResponse', bytes).replace(/"(cluster_id|member_id)":"\d+"/g, '"$1":<id>')}\n${afterFirstField(bytes).toString('hex')}`,
        );
        return `${responses.join('\n')}\n${said.slice(said.indexOf('stderr:\n'))}`;
      }),
  );

  it(
    'watch KEY -- CMD runs the command per event with the ETCD_WATCH_* variables',
    { timeout: scenarioTimeoutMs },
    () =>
      same(async (on) => {
        const script =
          'echo "rev=$ETCD_WATCH_REVISION type=$ETCD_WATCH_EVENT_TYPE key=$ETCD_WATCH_KEY value=$ETCD_WATCH_VALUE"';
        const watch = on.start(['watch', '--rev', '2', 'w/', '--prefix', '--', 'sh', '-c', script]);
        await watch.waitFor('rev=', 4);
        return watch.end('SIGTERM');
      }),
  );

  it(
    'watch -i takes watch and progress lines and refuses others; the end of stdin ends it',
    { timeout: scenarioTimeoutMs },
    () =>
      same(async (on) => {
        const watch = on.start(['watch', '-i']);
        watch.write('nonsense\n\nwatch\nwatch i/key\nprogress\n');
        await watch.waitFor('progress notify:');
        await on.drive('put', 'i/key', 'live');
        await watch.waitFor('live');
        watch.write('watch w/a --rev 2 -- echo ran\n');
        await watch.waitFor('ran', 2);
        return watch.end('eof');
      }),
  );

  it(
    "snapshot save fetches a backup that snapshot status reads, with etcdctl's messages",
    { timeout: scenarioTimeoutMs },
    () =>
      same(async (on) => {
        const dir = await mkdtemp(join(tmpdir(), 'tsetcd-ctl-save-'));
        try {
          const file = join(dir, 'backup.db');
          const save = on.start(['snapshot', 'save', file]);
          const said = (await save.end('by itself'))
            .split(dir)
            .join('<dir>')
            // zap's wall-clock time, the transfer's duration and the backend's size are the server's own.
            .replace(/"ts":("[-0-9T:.Z]+"|[0-9.e+]+)/g, '"ts":<ts>')
            .split(`127.0.0.1:${on.member.clientPort}`)
            .join('<endpoint>')
            .replace(/"took":[0-9.e-]+/g, '"took":<took>')
            .replace(/"size":"[^"]*"/g, '"size":<size>');
          const status = await runEtcdctl('127.0.0.1:1', ['snapshot', 'status', file, '-w', 'json']);
          const { revision, totalKey } = JSON.parse(status.stdout) as { revision: number; totalKey: number };
          return `${said}\nrevision ${revision}, ${totalKey} keys`;
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }),
  );

  it('make-mirror copies a prefix under another one and follows new changes', { timeout: scenarioTimeoutMs }, () =>
    same(async (on) => {
      const endpoint = `127.0.0.1:${on.member.clientPort}`;
      const mirror = on.start(['make-mirror', '--prefix', 'w/', '--dest-prefix', 'm/', endpoint]);
      await until(async () => (await runEtcdctl(endpoint, ['get', 'm/a'])).stdout !== '');
      await on.drive('put', 'w/c', 'after the base');
      await until(async () => (await runEtcdctl(endpoint, ['get', 'm/c'])).stdout !== '');
      const copied = await runEtcdctl(endpoint, ['get', 'm/', '--prefix']);
      return `${copied.stdout}\n${await mirror.end('SIGTERM')}`;
    }),
  );

  it(
    'with the first endpoint down, commands go to the next one (addresses and host names)',
    { timeout: scenarioTimeoutMs },
    () =>
      same(async (on) => {
        const port = on.member.clientPort;
        // The get starts once the put has ended: started together, it could read before the put.
        const put = await on
          .startWithEndpoints(`localhost:1,localhost:${port}`, ['put', 'failover', 'named'])
          .end('by itself');
        const get = await on.startWithEndpoints(`127.0.0.1:1,127.0.0.1:${port}`, ['get', 'failover']).end('by itself');
        return `${put}\n${get}`;
      }),
  );

  it(
    'watch from a compacted revision is cancelled with the compaction error (exit 5)',
    { timeout: scenarioTimeoutMs },
    () =>
      same(async (on) => {
        await on.drive('compaction', '3');
        const watch = on.start(['watch', 'w/a', '--rev', '2', '-w', 'json']);
        return watch.end('by itself');
      }),
  );

  it('lock holds until SIGTERM, a second locker waits and then runs its command', { timeout: scenarioTimeoutMs }, () =>
    same(async (on) => {
      const first = on.start(['lock', 'L']);
      await first.waitFor('L/');
      // The holder's key is in the store, held by the session's lease.
      const held = await runEtcdctl(`127.0.0.1:${on.member.clientPort}`, ['get', 'L/', '--prefix']);
      const second = on.start(['lock', 'L', '--', 'sh', '-c', 'echo "got $ETCD_LOCK_KEY"']);
      const released = await first.end('SIGTERM');
      return [held.stdout, released, await second.end('by itself')].join('\n');
    }),
  );

  it(
    'elect -l -w json shows each leader without a count and a proclamation with the count of the range',
    { timeout: scenarioTimeoutMs },
    () =>
      same(async (on) => {
        // The first candidate is elected before the observer starts, so the observer finds it by its
        // range (a count of 1) rather than by a watch (no count): clientv3 reuses that answer for the
        // leader's later values, and which of the two happens is the order the test fixes here.
        const first = on.start(['elect', 'J', 'p1']);
        await first.waitFor('p1');
        const observer = on.start(['elect', '-l', 'J', '-w', 'json']);
        await observer.waitFor(`"value":"${Buffer.from('p1').toString('base64')}"`);
        const second = on.start(['elect', 'J', 'p2']);
        await untilCandidates(on, 'J/', 2);
        const endpoint = `127.0.0.1:${on.member.clientPort}`;
        const candidates = await runEtcdctl(endpoint, ['get', 'J/', '--prefix', '--keys-only', '--sort-by=CREATE']);
        const leaderKey = candidates.stdout.split('\n')[0] ?? '';
        // A new value of the leader's key (a proclamation) reaches observers with the range's count.
        await on.drive('put', leaderKey, 'p1b', '--ignore-lease');
        await observer.waitFor(`"value":"${Buffer.from('p1b').toString('base64')}"`);
        const resigned = await first.end('SIGTERM');
        // The second candidate is ended only once it has said it won: a signal before that ends its
        // campaign with "context canceled" (the next scenario), on every client and server alike.
        await second.waitFor('p2');
        await observer.waitFor(`"value":"${Buffer.from('p2').toString('base64')}"`);
        return [resigned, await second.end('SIGTERM'), await observer.end('SIGTERM')].join('\n');
      }),
  );

  for (const [command, name, ...proposal] of [
    ['elect', 'C', 'p'],
    ['lock', 'M'],
  ] as const) {
    it(
      `${command}: one ended while it waits says "context canceled" (exit 1) and its key is gone when it exits`,
      { timeout: scenarioTimeoutMs },
      () =>
        same(async (on) => {
          const first = on.start([command, name, ...proposal]);
          await first.waitFor(`${name}/`);
          const second = on.start([command, name, ...proposal]);
          await untilCandidates(on, `${name}/`, 2);
          const cancelled = await second.end('SIGTERM');
          const left = await runEtcdctl(`127.0.0.1:${on.member.clientPort}`, ['get', `${name}/`, '--prefix']);
          return [cancelled, left.stdout, await first.end('SIGTERM')].join('\n');
        }),
    );
  }

  it('elect campaigns, observers see each leader, and SIGTERM resigns', { timeout: scenarioTimeoutMs }, () =>
    same(async (on) => {
      const observer = on.start(['elect', '-l', 'E']);
      const first = on.start(['elect', 'E', 'p1']);
      await first.waitFor('p1');
      await observer.waitFor('p1');
      const second = on.start(['elect', 'E', 'p2']);
      const resigned = await first.end('SIGTERM');
      await second.waitFor('p2');
      await observer.waitFor('p2');
      return [resigned, await second.end('SIGTERM'), await observer.end('SIGTERM')].join('\n');
    }),
  );
});
