/**
 * check perf and check datascale, whole runs three ways: etcdctl against a real etcd (the
 * reference), tsetcdctl against a second etcd and tsetcdctl against tsetcd, with the same
 * commands in the same order on each side. The figures vary by run, so each progress frame is
 * checked against the progress bar's exact shape and then collapsed, and the measured figures are
 * masked; the lines, their order, the PASS/FAIL wording and the exit codes must agree. Each side's
 * verdict lines must also be what etcdctl's thresholds give for the figures that side printed.
 * A second trio of members is stopped (SIGSTOP) for a few seconds during its perf run, which makes
 * its slowest request and spread fail on every side.
 * Over https, check datascale fetches /metrics as etcdctl does: with the client certificate and
 * --insecure-skip-tls-verify, verifying the server against the default roots rather than --cacert.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { perfVerdict, type LatencyStats } from '../../ctl/check-commands.js';
import { runCommand, type CommandResult } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { etcdCommand, etcdctlBinaryPath, sutCommand, tsetcdctlBinPath } from '../support/sut.js';
import { makeCertificates, tlsSkipReason, type TestCertificates } from '../support/tls.js';
import type { TlsConfig } from '../../src/config/config.js';

/** A perf run lasts a minute; a command still running this long after is killed. */
const checkTimeoutMs = 150_000;
/** The perf check's rate with --load s, from etcdctl's workload models. */
const smallPerfLimit = 150;
/** When, into the stalled trio's perf run, its members are stopped, and for how long. */
const stallAfterMs = 20_000;
const stallMs = 3_000;
/** How long check datascale is watched waiting on an endpoint nobody listens on. */
const hangWatchMs = 5_000;

type Side = 'etcdctl/etcd' | 'tsetcdctl/etcd' | 'tsetcdctl/tsetcd';

interface Trio {
  readonly members: readonly [Member, Member, Member];
}

function endpointOf(member: Member): string {
  return `127.0.0.1:${member.clientPort}`;
}

/**
 * Runs one command line on each side of the trio at once: etcdctl on the first member, tsetcdctl
 * on the others; `env` is added to every side's environment.
 */
function runThreeWays(
  trio: Trio,
  args: readonly string[],
  endpoint = endpointOf,
  env: Readonly<Record<string, string>> = {},
): Promise<CommandResult[]> {
  const options = { env: { ETCDCTL_API: '3', ...env }, timeoutMs: checkTimeoutMs };
  return Promise.all(
    trio.members.map((member, index) => {
      const line = [`--endpoints=${endpoint(member)}`, ...args];
      return index === 0
        ? runCommand(etcdctlBinaryPath, line, options)
        : runCommand(process.execPath, [tsetcdctlBinPath, ...line], options);
    }),
  );
}

/** The frame pb v1 draws without a terminal: counters, percentage, then the time left or taken. */
function expectedFrame(current: number, total: number, time: string | undefined): string {
  const percent = ((current / total) * 100).toFixed(2).padStart(6);
  return ` ${current} / ${total}  ${percent}%${time === undefined ? '' : ` ${time}`}`;
}

/** A redraw of pb's bar after its carriage return (counters, percentage, time left or taken), or text up to a line's end. */
const progressToken = /\r( (\d+) \/ (\d+) +\d+\.\d\d%(?: ((?:\d+[dhm])*\d+s))?)|[^\r\n]*\n?/y;

interface Frame {
  readonly text: string;
  readonly count: number;
  readonly total: number;
  readonly time: string | undefined;
}

type ProgressToken = { readonly frame: Frame } | { readonly text: string };

function progressTokens(stdout: string, side: Side): ProgressToken[] {
  const tokens: ProgressToken[] = [];
  progressToken.lastIndex = 0;
  while (progressToken.lastIndex < stdout.length) {
    const at = progressToken.lastIndex;
    const match = progressToken.exec(stdout);
    assert.ok(
      match !== null && match[0] !== '',
      `${side}: ${JSON.stringify(stdout.slice(at, at + 40))} is not pb's shape`,
    );
    const [whole, text, count, total, time] = match;
    tokens.push(
      text === undefined ? { text: whole } : { frame: { text, count: Number(count), total: Number(total), time } },
    );
  }
  return tokens;
}

/** Checks each frame for pb's exact shape: one total, counts from 0, the time left as 00m00s, a full bar with the time taken. */
function checkFrames(frames: readonly Frame[], finished: boolean, side: Side): void {
  const total = frames[0]!.total;
  assert.equal(frames[0]!.count, 0, `${side}: the bar starts at 0`);
  frames.forEach(({ text, count, time }, index) => {
    if (time !== undefined && !/^(\d+d)?(\d+h)?\d\dm\d\ds$/.test(time))
      assert.match(time, /^(\d+h)?(\d+m)?\d+s$/, `${side}: frame ${index} shows the time left or taken`);
    assert.equal(text, expectedFrame(count, total, time), `${side}: frame ${index}`);
  });
  if (finished)
    assert.ok(
      frames.some(({ count, time }) => count === total && time !== undefined && /^(\d+h)?(\d+m)?\d+s$/.test(time)),
      `${side}: the bar ends full, showing the time taken`,
    );
}

/**
 * Checks the progress bar's redraws in `stdout` and puts one line naming its total in their place.
 * A redraw is a carriage return and a frame; the bar ends its line with a newline of its own when it
 * finishes. On a pipe these writes interleave with the command's lines as the threads printing them
 * are scheduled: etcdctl's perf bar is finished by a goroutine of its own, which on a busy machine
 * runs after the report has gone on, so a frame can stand before a line's text and the bar's newline
 * after a later line. What a terminal redraws in place is not content: every frame and the bar's
 * newline (the first empty line after the last frame) are taken out, the marker stands where the
 * first frame was, and every other line keeps its text and its place.
 */
function collapseProgress(stdout: string, side: Side): string {
  const tokens = progressTokens(stdout, side);
  const firstFrame = tokens.findIndex((token) => 'frame' in token);
  if (firstFrame === -1) return stdout;
  const lastFrame = tokens.length - 1 - [...tokens].reverse().findIndex((token) => 'frame' in token);
  const textOf = (index: number): string | undefined => {
    const token = tokens[index]!;
    return 'text' in token ? token.text : undefined;
  };
  // The bar's newline starts a line: it follows the last frame or a whole line.
  const barNewline = tokens.findIndex(
    (_, index) =>
      index > lastFrame && textOf(index) === '\n' && (index === lastFrame + 1 || textOf(index - 1)!.endsWith('\n')),
  );
  const frames = tokens.flatMap((token) => ('frame' in token ? [token.frame] : []));
  checkFrames(frames, barNewline !== -1, side);
  return tokens
    .map((token, index) => {
      if (index === firstFrame) return `<progress to ${frames[0]!.total}>\n`;
      return 'text' in token && index !== barNewline ? token.text : '';
    })
    .join('');
}

/** The figures a perf report printed, as the stats that give them. */
function printedPerfStats(stdout: string): LatencyStats {
  const figure = (pattern: RegExp): number => Number(pattern.exec(stdout)?.[1] ?? Number.NaN);
  return {
    // etcdctl prints the truncated rate plus one; halfway between is on the same side of every threshold.
    requestsPerSecond: figure(/Throughput (?:is|too low:) (\d+) writes\/s/) - 0.5,
    slowestSeconds: figure(/Slowest request took (?:too long: )?([\d.]+|NaN)s/),
    stddevSeconds: figure(/Stddev (?:is|too high:) ([\d.]+|NaN)s/),
    errors: new Map(
      [...stdout.matchAll(/^FAIL: ERROR\((.*)\) -> (\d+)$/gm)].map((match) => [match[1]!, Number(match[2])]),
    ),
  };
}

/** The transcript with what varies by run masked: endpoints, measured figures and revisions of perf runs. */
/**
 * What a comparison masks beyond the figures: revisions, which perf runs move by a varying number of
 * puts; and for perf runs the verdict (its lines and the exit code), since a side whose client was
 * starved of CPU on a shared machine measures a lower throughput and rightly fails where another
 * passes: each side's verdict is checked against its own figures instead (assertVerdictsFollowFigures).
 */
interface Masks {
  readonly revisions: boolean;
  readonly verdicts?: boolean;
}

function masked(result: CommandResult, side: Side, member: Member, masks: Masks): string {
  let stdout = collapseProgress(result.stdout, side)
    .split(endpointOf(member))
    .join('<endpoint>')
    .replace(/\d+ writes\/s/g, '<n> writes/s')
    .replace(/took (too long: )?[\d.]+s/g, 'took $1<s>s')
    .replace(/Stddev (is|too high:) [\d.]+s/g, 'Stddev $1 <s>s')
    .replace(/used : [\d.]+ MB/g, 'used : <n> MB');
  if (masks.revisions) stdout = stdout.replace(/with revision \d+/g, 'with revision <rev>');
  const verdictAt = stdout.search(/^(PASS|FAIL|Slowest|Stddev)/m);
  if (masks.verdicts === true && verdictAt >= 0) stdout = `${stdout.slice(0, verdictAt)}<verdict>\n`;
  // clientv3's retry warnings carry timestamps and random client names; tsetcdctl has none.
  const stderr = result.stderr.replace(/^\{"level":"warn".*\n/gm, '');
  return `stdout:\n${stdout}stderr:\n${stderr}exit ${masks.verdicts === true ? '<code>' : result.code}`;
}

const sides: readonly Side[] = ['etcdctl/etcd', 'tsetcdctl/etcd', 'tsetcdctl/tsetcd'];

function assertSameTranscripts(trio: Trio, results: readonly CommandResult[], masks: Masks): string {
  const transcripts = results.map((result, index) => masked(result, sides[index]!, trio.members[index]!, masks));
  // The figures the masks hid, so a verdict that differs shows why.
  const figures = results.map((result, index) => `${sides[index]}: ${result.stdout.split('\r').pop()?.trim() ?? ''}`);
  assert.equal(transcripts[1], transcripts[0], `tsetcdctl against etcd\n${figures.join('\n')}`);
  assert.equal(transcripts[2], transcripts[0], `tsetcdctl against tsetcd\n${figures.join('\n')}`);
  return transcripts[0]!;
}

/** Each side's verdict is what etcdctl's thresholds give for the figures it printed. */
function assertVerdictsFollowFigures(results: readonly CommandResult[]): void {
  results.forEach((result, index) => {
    const verdict = perfVerdict(printedPerfStats(result.stdout), smallPerfLimit);
    const printed = result.stdout
      .slice(result.stdout.search(/^(PASS|FAIL|Slowest|Stddev)/m))
      .trimEnd()
      .split('\n');
    assert.deepEqual(printed, verdict.lines, `${sides[index]}: verdict lines`);
    assert.equal(result.code, verdict.ok ? 0 : 1, `${sides[index]}: exit code`);
  });
}

/** Three members; with `tls`, serving https and probed with the client certificate `probeIdentity`. */
async function startTrio(tls: { clientTls: TlsConfig; probeIdentity: TlsConfig } | object = {}): Promise<Trio> {
  const tsetcd = sutCommand().command;
  assert.ok(tsetcd !== undefined, 'expected tsetcd to be built');
  const members = await Promise.all([
    Member.start({ command: etcdCommand(), ...tls }),
    Member.start({ command: etcdCommand(), ...tls }),
    Member.start({ command: tsetcd, ...tls }),
  ]);
  return { members: [members[0]!, members[1]!, members[2]!] };
}

describe('check perf and check datascale print what etcdctl prints', () => {
  let calm: Trio | undefined;
  let stalled: Trio | undefined;
  /** check perf against an endpoint nobody listens on: it takes its whole minute, so it starts first. */
  let unanswered: Promise<CommandResult[]> | undefined;
  const nobody = (): string => '127.0.0.1:1';

  before(async () => {
    [calm, stalled] = await Promise.all([startTrio(), startTrio()]);
    unanswered = runThreeWays(calm, ['check', 'perf', '--dial-timeout', '1s'], nobody);
    unanswered.catch(() => undefined);
  });

  after(async () => {
    await Promise.all([...(calm?.members ?? []), ...(stalled?.members ?? [])].map((member) => member.destroy()));
  });

  it('refuses a load it does not know and a prefix that holds keys, with etcdctl exit codes', async () => {
    const trio = calm!;
    const cases = [
      ['check', 'perf', '--load', 'q'],
      ['check', 'datascale', '--load', 'huge'],
      ['put', '/etcdctl-check-perf/left', 'over'],
      ['check', 'perf'],
      ['check', 'datascale', '--prefix', '/etcdctl-check-perf/', '--load', 'medium'],
      ['del', '--prefix', '/etcdctl-check-perf/'],
    ];
    for (const args of cases) assertSameTranscripts(trio, await runThreeWays(trio, args), { revisions: false });
  });

  it('runs check datascale --load s --auto-compact --auto-defrag, then leaves no key behind', async () => {
    const trio = calm!;
    const args = ['check', 'datascale', '--load', 's', '--auto-compact', '--auto-defrag', '--prefix', '/scale/'];
    // The members saw the same writes before, so the compacted revision is the same on each side.
    const transcript = assertSameTranscripts(trio, await runThreeWays(trio, args), { revisions: false });
    assert.match(transcript, /<progress to 10000>\nCompacting with revision \d+\nCompacted/);
    assert.match(transcript, /PASS: Approximate system memory used : <n> MB\.\nstderr:\nexit 0$/);
    const left = await runThreeWays(trio, ['get', '--prefix', '/scale/', '--keys-only']);
    assert.deepEqual(
      left.map((result) => result.stdout + result.stderr),
      ['', '', ''],
    );
  });

  it('runs check perf --load s on calm members and on members stopped for 3 s, each verdict following its figures', async () => {
    const args = ['check', 'perf', '--load', 's', '--auto-compact', '--auto-defrag'];
    const stall = async (): Promise<void> => {
      await new Promise((resolve) => setTimeout(resolve, stallAfterMs));
      const pids = stalled!.members.map((member) => member.pid);
      for (const pid of pids) process.kill(pid, 'SIGSTOP');
      try {
        await new Promise((resolve) => setTimeout(resolve, stallMs));
      } finally {
        for (const pid of pids) process.kill(pid, 'SIGCONT');
      }
    };
    const [calmResults, stalledResults] = await Promise.all([
      runThreeWays(calm!, args),
      runThreeWays(stalled!, args),
      stall(),
    ]);
    assertVerdictsFollowFigures(calmResults);
    assertVerdictsFollowFigures(stalledResults);
    const calmTranscript = assertSameTranscripts(calm!, calmResults, { revisions: true, verdicts: true });
    assert.match(calmTranscript, /<progress to 60>\nCompacting with revision <rev>\nCompacted with revision <rev>\n/);
    assert.match(calmTranscript, /Defragmenting "<endpoint>"\nDefragmented "<endpoint>"\n/);
    assertSameTranscripts(stalled!, stalledResults, { revisions: true, verdicts: true });
    stalledResults.forEach((result, index) => {
      assert.match(result.stdout, /^Slowest request took too long: [\d.]+s\n(.*\n)*FAIL\n$/m, sides[index]);
      assert.equal(result.code, 1, sides[index]);
    });
    const left = await runThreeWays(calm!, ['get', '--prefix', '/etcdctl-check-perf/', '--keys-only']);
    assert.deepEqual(
      left.map((result) => result.stdout + result.stderr),
      ['', '', ''],
    );
  });

  it('gives up on check perf after its minute when no member answers, as etcdctl does', async () => {
    const transcript = assertSameTranscripts(calm!, await unanswered!, { revisions: false });
    assert.equal(transcript, 'stdout:\nstderr:\nError: context deadline exceeded\nexit 1');
  });

  it('keeps waiting in check datascale when no member answers, as etcdctl does', async () => {
    const options = { env: { ETCDCTL_API: '3' }, timeoutMs: hangWatchMs };
    const line = [`--endpoints=${nobody()}`, '--dial-timeout', '1s', 'check', 'datascale'];
    const results = await Promise.all([
      runCommand(etcdctlBinaryPath, line, options),
      runCommand(process.execPath, [tsetcdctlBinPath, ...line], options),
    ]);
    // Killed at the watch's end (no exit code), having printed nothing but clientv3's retry warnings.
    for (const result of results) {
      assert.equal(result.code, null, `expected the command still waiting, saw ${result.stdout}${result.stderr}`);
      assert.equal(result.stdout + result.stderr.replace(/^\{"level":"warn".*\n/gm, ''), '');
    }
  });
});

describe('check datascale over https reads /metrics as etcdctl does', { skip: tlsSkipReason(sutCommand()) }, () => {
  let certs: TestCertificates | undefined;
  let trio: Trio | undefined;
  let clientArgs: string[] = [];
  let caFile = '';
  const httpsEndpoint = (member: Member): string => `https://${endpointOf(member)}`;

  before(async () => {
    certs = makeCertificates();
    const server = certs.member('server');
    const client = certs.member('client');
    caFile = server.trustedCaFile;
    clientArgs = ['--cacert', caFile, '--cert', client.certFile, '--key', client.keyFile];
    trio = await startTrio({ clientTls: server, probeIdentity: client });
  });

  after(async () => {
    await Promise.all((trio?.members ?? []).map((member) => member.destroy()));
    certs?.remove();
  });

  const datascale = ['check', 'datascale', '--load', 's', '--prefix', '/tls-scale/'];

  it('verifies the server against the default roots, not --cacert, and fails when they lack its CA', async () => {
    const transcript = assertSameTranscripts(
      trio!,
      await runThreeWays(trio!, [...clientArgs, ...datascale], httpsEndpoint),
      { revisions: false },
    );
    assert.equal(
      transcript,
      'stdout:\nfetch error: Get "https://<endpoint>/metrics": x509: certificate signed by unknown authority\n' +
        'FAIL: Could not read process_resident_memory_bytes before the put operations.\nstderr:\nexit 1',
    );
  });

  it('passes with the CA among the default roots (SSL_CERT_FILE for Go, NODE_EXTRA_CA_CERTS for Node), presenting the client certificate', async () => {
    // Each program reads only its own variable, so every side gets both.
    const env = { SSL_CERT_FILE: caFile, NODE_EXTRA_CA_CERTS: caFile };
    const results = await runThreeWays(trio!, [...clientArgs, ...datascale], httpsEndpoint, env);
    const transcript = assertSameTranscripts(trio!, results, { revisions: false });
    assert.match(transcript, /<progress to 10000>\nPASS: Approximate system memory used : <n> MB\.\nstderr:\nexit 0$/);
  });

  it('passes with --insecure-skip-tls-verify, presenting the client certificate', async () => {
    const args = ['--insecure-skip-tls-verify', ...clientArgs, ...datascale];
    const transcript = assertSameTranscripts(trio!, await runThreeWays(trio!, args, httpsEndpoint), {
      revisions: false,
    });
    assert.match(transcript, /<progress to 10000>\nPASS: Approximate system memory used : <n> MB\.\nstderr:\nexit 0$/);
  });
});
