/**
 * The latency plot: well-formed SVG with one line per series, labelled axes and a legend, and
 * percentiles placed left to right on the log scale of 1/(1-p).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  comparePlots,
  formatCompareReport,
  overFsyncFloor,
  overRoundTripAndFsync,
  plottedComparison,
  type CompareReport,
  type SideRun,
  type WorkloadComparison,
} from '../../bench/compare.js';
import { loadOptions, loadPlotSvg, reportedPercentiles } from '../../bench/load.js';
import { latencyPlotSvg, percentileTickLabel, plotSeriesMax, type LatencySeries } from '../../bench/plot.js';

interface Element {
  readonly name: string;
  readonly attributes: Readonly<Record<string, string>>;
}

/** Checks that `xml` is one well-formed element tree and returns its elements and text runs in order. */
function parseSvg(xml: string): { elements: Element[]; texts: string[] } {
  const declaration = '<?xml version="1.0" encoding="UTF-8"?>\n';
  assert.ok(xml.startsWith(declaration), `expected an XML declaration, saw ${xml.slice(0, 40)}`);
  const body = xml.slice(declaration.length);
  const token = /<(\/?)([a-zA-Z]+)((?:\s+[a-zA-Z][\w:-]*="[^"<]*")*)\s*(\/?)>|([^<]+)/y;
  const stack: string[] = [];
  const elements: Element[] = [];
  const texts: string[] = [];
  let roots = 0;
  let match: RegExpExecArray | null;
  let parsedTo = 0;
  while ((match = token.exec(body)) !== null) {
    parsedTo = token.lastIndex;
    const [, closing, name, attributes, selfClosing, text] = match;
    if (text !== undefined) {
      assert.doesNotMatch(text, /&(?!amp;|lt;|gt;|quot;)/, `expected escaped text, saw ${text}`);
      if (stack.length === 0) assert.match(text, /^\s*$/, `expected nothing outside the root, saw ${text}`);
      else if (text.trim() !== '') texts.push(text);
      continue;
    }
    if (closing === '/') {
      assert.equal(stack.pop(), name, `expected </${stack.at(-1) ?? ''}> before </${name}>`);
      continue;
    }
    if (stack.length === 0) roots += 1;
    const pairs = [...(attributes ?? '').matchAll(/([a-zA-Z][\w:-]*)="([^"]*)"/g)].map((m) => [m[1], m[2]]);
    elements.push({ name: name as string, attributes: Object.fromEntries(pairs) });
    if (selfClosing !== '/') stack.push(name as string);
  }
  assert.equal(parsedTo, body.length, `expected markup throughout, stopped at: ${body.slice(parsedTo, parsedTo + 60)}`);
  assert.deepEqual(stack, [], 'expected every element closed');
  assert.equal(roots, 1, 'expected one root element');
  return { elements, texts };
}

/** The vertices of a path's "M x,y L x,y ..." data. */
function vertices(path: Element): Array<{ x: number; y: number }> {
  const d = path.attributes.d ?? '';
  assert.match(d, /^M [\d.]+,[\d.]+( L [\d.]+,[\d.]+)*$/);
  return d
    .slice(2)
    .split(' L ')
    .map((pair) => {
      const [x, y] = pair.split(',').map(Number);
      return { x: x as number, y: y as number };
    });
}

function series(label: string, usAtRank: (rank: number) => number): LatencySeries {
  return { label, points: reportedPercentiles.map((percentile, rank) => ({ percentile, us: usAtRank(rank) })) };
}

test('the plot is well-formed SVG with one path per series, labelled axes, a title and a legend', () => {
  const svg = latencyPlotSvg({
    title: 'put-64 <etcd & tsetcd>',
    series: [series('etcd', (rank) => 800 + rank * rank * 150), series('tsetcd', (rank) => 1_000 + rank * rank * 400)],
  });
  const { elements, texts } = parseSvg(svg);
  assert.equal(elements[0]?.name, 'svg');
  assert.equal(elements[0]?.attributes.xmlns, 'http://www.w3.org/2000/svg');
  assert.equal(elements.filter((e) => e.name === 'path').length, 2);
  for (const label of [
    'put-64 &lt;etcd &amp; tsetcd&gt;',
    'percentile',
    'latency (ms)',
    'etcd',
    'tsetcd',
    '0%',
    '90%',
    '99%',
    '99.9%',
    '99.99%',
    '99.999%',
    'max',
  ]) {
    assert.ok(texts.includes(label), `expected the text ${label}, saw ${texts.join(' | ')}`);
  }
});

test('higher percentiles sit further right and higher latencies further up', () => {
  const { elements } = parseSvg(latencyPlotSvg({ title: 't', series: [series('a', (rank) => 500 * (rank + 1))] }));
  const [path] = elements.filter((e) => e.name === 'path');
  const points = vertices(path as Element);
  assert.equal(points.length, reportedPercentiles.length);
  for (let i = 1; i < points.length; i += 1) {
    const [previous, current] = [points[i - 1], points[i]] as [{ x: number; y: number }, { x: number; y: number }];
    assert.ok(
      current.x > previous.x,
      `expected x to grow from ${reportedPercentiles[i - 1]} to ${reportedPercentiles[i]}%, saw ${previous.x} then ${current.x}`,
    );
    // SVG's y grows downwards.
    assert.ok(
      current.y < previous.y,
      `expected y to rise at ${reportedPercentiles[i]}%, saw ${previous.y} then ${current.y}`,
    );
  }
});

test('percentile ticks read 0%, 90%, 99%, 99.9% and so on', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5].map(percentileTickLabel), ['0%', '90%', '99%', '99.9%', '99.99%', '99.999%']);
});

test('the plot refuses series it cannot draw', () => {
  assert.throws(() => latencyPlotSvg({ title: 't', series: [] }), /expected 1\.\.\d+ series/);
  const tooMany = Array.from({ length: plotSeriesMax + 1 }, (_, i) => series(`s${i}`, () => 1));
  assert.throws(() => latencyPlotSvg({ title: 't', series: tooMany }), /expected 1\.\.\d+ series/);
  assert.throws(
    () => latencyPlotSvg({ title: 't', series: [{ label: 'e', points: [] }] }),
    /expected points in series e/,
  );
  const backwards = {
    label: 'b',
    points: [
      { percentile: 99, us: 5 },
      { percentile: 50, us: 6 },
    ],
  };
  assert.throws(
    () => latencyPlotSvg({ title: 't', series: [backwards] }),
    /expected increasing percentiles in series b/,
  );
});

/** A side's run of put-64 whose latency at every percentile is `us`, for the plot-choosing tests. */
function sideRun(us: number): SideRun {
  const { op, consistency, txnOps, conns, clients, ratePerSec } = loadOptions({
    endpoints: ['e'],
    conns: 8,
    clients: 64,
  });
  const latencyUs = { p50: us, p90: us, p99: us, p999: us, max: us, mean: us };
  const latencyPercentilesUs = reportedPercentiles.map((percentile) => ({ percentile, us }));
  const counts = {
    requests: 100,
    errors: {},
    errorCount: 0,
    elapsedMs: 1_000,
    throughputPerSec: 100,
    clientCpuMs: 0,
    lastRevision: 1,
  };
  const server = {
    serverCpuMs: 0,
    serverCpuPerRequestUs: 0,
    clientCpuPerRequestUs: 0,
    peakRssKb: 0,
    hostStealPercent: 0,
  };
  return { op, consistency, txnOps, conns, clients, ratePerSec, latencyUs, latencyPercentilesUs, ...counts, ...server };
}

function comparison(round: number, etcdUs: number, sutUs: number): WorkloadComparison {
  const ratios = {
    throughput: 1,
    p50: 1,
    p99: sutUs / etcdUs,
    p999: 1,
    serverCpuPerRequest: 1,
    clientCpuPerRequest: 1,
  };
  return { workload: 'put-64', round, etcd: sideRun(etcdUs), sut: sideRun(sutUs), ratios };
}

test('a compare plot draws etcd and tsetcd from the round with the median p99 ratio, and says so', () => {
  const comparisons = [comparison(1, 1_000, 1_500), comparison(2, 1_000, 900), comparison(3, 1_000, 1_200)];
  const report: CompareReport = {
    sutLabel: 'tsetcd',
    clientLabel: 'node',
    comparisons,
    peakRssKb: { etcd: 1, sut: 1, ratio: 1 },
    medianRatios: {},
    fsyncProbe: {
      dir: '/tmp',
      samples: 1,
      preallocated: { p50Ms: 0.2, p99Ms: 0.3 },
      append: { p50Ms: 0.4, p99Ms: 0.5 },
    },
    overFsyncFloor: {},
    overRoundTripAndFsync: {},
  };
  assert.equal(plottedComparison(report, 'put-64').round, 3);
  assert.equal(plottedComparison({ ...report, comparisons: comparisons.slice(0, 2) }, 'put-64').round, 2);
  const plots = comparePlots(report);
  assert.deepEqual([...plots.keys()], ['put-64.svg']);
  const { elements, texts } = parseSvg(plots.get('put-64.svg') as string);
  assert.equal(elements.filter((e) => e.name === 'path').length, 2);
  assert.ok(
    texts.includes('put-64: latency by percentile (op=put conns=8 clients=64)'),
    `expected the workload in the title, saw ${texts.join(' | ')}`,
  );
  assert.ok(
    texts.some((t) => t.startsWith('round 3 of 3')),
    `expected the subtitle to name the round, saw ${texts.join(' | ')}`,
  );
  assert.ok(
    texts.includes('etcd: 100 req/s') && texts.includes('tsetcd: 100 req/s'),
    `expected a legend entry per system, saw ${texts.join(' | ')}`,
  );
});

test("tsetcd-bench's plot titles the run's workload and draws its one series", () => {
  const { elements, texts } = parseSvg(loadPlotSvg({ ...sideRun(2_000), ratePerSec: 50 }, ['127.0.0.1:2379']));
  assert.equal(elements.filter((e) => e.name === 'path').length, 1);
  assert.ok(
    texts.includes('latency by percentile (op=put conns=8 clients=64 rate=50/s)'),
    `expected the workload in the title, saw ${texts.join(' | ')}`,
  );
  assert.ok(
    texts.includes('100 requests, 0 errors, 100 req/s'),
    `expected the counts in the subtitle, saw ${texts.join(' | ')}`,
  );
  assert.ok(texts.includes('127.0.0.1:2379'));
});

const put1Workload = { name: 'put-1', op: 'put', consistency: 'l', txnOps: 1, clients: 1, conns: 1 } as const;
/** A probe whose preallocated p50 is 250 us. */
const floorProbe = {
  dir: '/tmp',
  samples: 1,
  preallocated: { p50Ms: 0.25, p99Ms: 0.3 },
  append: { p50Ms: 0.4, p99Ms: 0.5 },
};

function reportOf(
  comparisons: WorkloadComparison[],
  floors: Pick<CompareReport, 'overFsyncFloor' | 'overRoundTripAndFsync'>,
): CompareReport {
  return {
    sutLabel: 'tsetcd',
    clientLabel: 'node',
    comparisons,
    peakRssKb: { etcd: 1, sut: 1, ratio: 1 },
    medianRatios: {},
    fsyncProbe: floorProbe,
    ...floors,
  };
}

test('a compare report sets one-client p50 latencies against the fsync floor of its own run', () => {
  const put1 = (round: number, etcdUs: number, sutUs: number): WorkloadComparison => ({
    ...comparison(round, etcdUs, sutUs),
    workload: 'put-1',
  });
  const comparisons = [put1(1, 900, 1_300), put1(2, 1_000, 1_100), put1(3, 800, 1_000), comparison(1, 5_000, 4_000)];
  const workloads = [
    put1Workload,
    { name: 'put-64', op: 'put', consistency: 'l', txnOps: 1, clients: 64, conns: 8 },
  ] as const;
  // Medians of 900/1000/800 and 1300/1100/1000 us over a 250 us floor; put-64 has many clients and is left out.
  const over = overFsyncFloor(comparisons, workloads, floorProbe);
  assert.deepEqual(over, { 'put-1': { etcd: 3.6, sut: 4.4 } });
  assert.deepEqual(overRoundTripAndFsync(comparisons, workloads, floorProbe), {}, 'no range-s-1, no round-trip floor');
  const text = formatCompareReport(reportOf(comparisons, { overFsyncFloor: over, overRoundTripAndFsync: {} }));
  assert.match(text, /^fsync probe \(4096-byte write \+ fdatasync, 1 samples in \/tmp\): preallocated p50 0\.250 ms/m);
  assert.match(
    text,
    /^put-1 p50 over the preallocated fsync p50 \(median of rounds; the target is 1\.2\): etcd 3\.6, tsetcd 4\.4$/m,
  );
});

test('with range-s-1 in the run, a one-client put is also set against a round trip plus the fsync, round by round', () => {
  const named = (workload: string, round: number, etcdUs: number, sutUs: number): WorkloadComparison => ({
    ...comparison(round, etcdUs, sutUs),
    workload,
  });
  const comparisons = [
    named('put-1', 1, 900, 1_200),
    named('range-s-1', 1, 200, 150),
    named('put-1', 2, 1_000, 800),
    named('range-s-1', 2, 250, 150),
  ];
  const workloads = [
    put1Workload,
    { name: 'range-s-1', op: 'range', consistency: 's', txnOps: 1, clients: 1, conns: 1 },
  ] as const;
  // etcd: 900/(200+250) = 2, 1000/(250+250) = 2; tsetcd: 1200/(150+250) = 3, 800/(150+250) = 2; a range is no write and gets no ratio.
  const over = overRoundTripAndFsync(comparisons, workloads, floorProbe);
  assert.deepEqual(over, { 'put-1': { etcd: 2, sut: 2.5 } });
  assert.deepEqual(Object.keys(overFsyncFloor(comparisons, workloads, floorProbe)), ['put-1']);
  assert.match(
    formatCompareReport(reportOf(comparisons, { overFsyncFloor: {}, overRoundTripAndFsync: over })),
    /^put-1 p50 over one round trip \(range-s-1 p50\) plus the fsync p50 \(median of rounds\): etcd 2, tsetcd 2\.5$/m,
  );
});
