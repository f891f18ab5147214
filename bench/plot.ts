/**
 * Latency plots as hand-written SVG, so the bench needs no plotting package: the classic HDR
 * histogram view, with the percentile on a log scale of 1/(1-p) (0%, 90%, 99%, 99.9%, ...) across
 * and the latency in milliseconds up, one line per series. Pure: series in, SVG text out.
 */

/** One point of a latency distribution: the latency at or below which `percentile` % of requests completed. */
export interface LatencyAtPercentile {
  readonly percentile: number;
  readonly us: number;
}

export interface LatencySeries {
  readonly label: string;
  /** Points in increasing percentile order; 100 is drawn at a separate "max" column. */
  readonly points: readonly LatencyAtPercentile[];
}

export interface LatencyPlot {
  readonly title: string;
  /** A smaller second line under the title. */
  readonly subtitle?: string;
  readonly series: readonly LatencySeries[];
}

/** Line colours, one per series; a plot holds at most this many series. */
const seriesColours = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'] as const;
export const plotSeriesMax = seriesColours.length;
const widthPx = 800;
const heightPx = 500;
const margin = { left: 80, right: 30, top: 60, bottom: 60 } as const;
/** The percentile axis shows at least 0%, 90% and 99%. */
const percentileDecadesMin = 2;
/** Roughly how many latency ticks the y axis gets. */
const latencyTicksTarget = 5;

/** Maps data to pixels; the x axis counts decades of 1/(1-p), the y axis is linear in ms. */
interface Frame {
  readonly decades: number;
  readonly hasMax: boolean;
  readonly latencyMsTop: number;
  readonly latencyStepMs: number;
  /** Pixel column of `decades` decades of 1/(1-p); the "max" column is one past the last decade. */
  xOfDecades(decades: number): number;
  x(percentile: number): number;
  y(latencyMs: number): number;
}

/** An SVG document plotting each series' latency against its percentiles. */
export function latencyPlotSvg(plot: LatencyPlot): string {
  checkPlot(plot);
  const frame = frameOf(plot.series);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${widthPx}" height="${heightPx}" viewBox="0 0 ${widthPx} ${heightPx}" font-family="sans-serif" font-size="12">`,
    `<rect x="0" y="0" width="${widthPx}" height="${heightPx}" fill="white"/>`,
    `<text x="${widthPx / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(plot.title)}</text>`,
    ...(plot.subtitle === undefined
      ? []
      : [`<text x="${widthPx / 2}" y="42" text-anchor="middle" fill="#555">${escapeXml(plot.subtitle)}</text>`]),
    ...percentileAxis(frame),
    ...latencyAxis(frame),
    ...plot.series.map((series, index) => seriesPath(series, index, frame)),
    ...legend(plot.series),
    '</svg>',
    '',
  ].join('\n');
}

function checkPlot(plot: LatencyPlot): void {
  if (plot.series.length < 1 || plot.series.length > plotSeriesMax)
    throw new Error(`expected 1..${plotSeriesMax} series, saw ${plot.series.length}`);
  for (const series of plot.series) {
    if (series.points.length === 0) throw new Error(`expected points in series ${series.label}, saw none`);
    series.points.forEach((point, index) => {
      const previous = series.points[index - 1];
      if (!(point.percentile >= 0 && point.percentile <= 100) || !(point.us >= 0)) {
        throw new Error(
          `expected a percentile in 0..100 and a latency >= 0 in series ${series.label}, saw ${JSON.stringify(point)}`,
        );
      }
      if (previous !== undefined && point.percentile <= previous.percentile) {
        throw new Error(
          `expected increasing percentiles in series ${series.label}, saw ${previous.percentile} then ${point.percentile}`,
        );
      }
    });
  }
}

/** log10(1/(1-p)): 0 for 0%, 1 for 90%, 2 for 99%, ... (infinite for 100%). */
function decadesOf(percentile: number): number {
  return Math.log10(100 / (100 - percentile));
}

function frameOf(series: readonly LatencySeries[]): Frame {
  const points = series.flatMap((s) => s.points);
  const finite = points.filter((p) => p.percentile < 100).map((p) => decadesOf(p.percentile));
  // The epsilon keeps float error (log10 of 1000.0000000000009) from adding a decade.
  const decades = Math.max(percentileDecadesMin, ...finite.map((d) => Math.ceil(d - 1e-9)));
  const hasMax = points.some((p) => p.percentile === 100);
  const columns = decades + (hasMax ? 1 : 0);
  const slowestMs = Math.max(...points.map((p) => p.us / 1000));
  const latencyStepMs = niceStep(slowestMs / latencyTicksTarget);
  const latencyMsTop = Math.max(1, Math.ceil(slowestMs / latencyStepMs - 1e-9)) * latencyStepMs;
  const plotWidthPx = widthPx - margin.left - margin.right;
  const plotHeightPx = heightPx - margin.top - margin.bottom;
  const xOfDecades = (d: number): number => margin.left + (plotWidthPx * d) / columns;
  return {
    decades,
    hasMax,
    latencyMsTop,
    latencyStepMs,
    xOfDecades,
    x: (percentile) => xOfDecades(percentile === 100 ? columns : decadesOf(percentile)),
    y: (latencyMs) => margin.top + plotHeightPx * (1 - latencyMs / latencyMsTop),
  };
}

/** The smallest 1, 2 or 5 times a power of ten that is at least `raw` (1 when every latency is 0). */
function niceStep(raw: number): number {
  if (!(raw > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  return ([1, 2, 5, 10].find((m) => m * power >= raw * (1 - 1e-9)) ?? 10) * power;
}

/** "0%", "90%", "99%", "99.9%", ... for decade `k`. */
export function percentileTickLabel(decade: number): string {
  return decade === 0 ? '0%' : `${(100 - 100 / 10 ** decade).toFixed(Math.max(0, decade - 2))}%`;
}

function percentileAxis(frame: Frame): string[] {
  const bottom = frame.y(0);
  const ticks = Array.from({ length: frame.decades + 1 }, (_, k) => ({
    x: frame.xOfDecades(k),
    label: percentileTickLabel(k),
  }));
  if (frame.hasMax) ticks.push({ x: frame.x(100), label: 'max' });
  return [
    ...ticks.map(
      (t) => `<line x1="${px(t.x)}" y1="${margin.top}" x2="${px(t.x)}" y2="${px(bottom)}" stroke="#e0e0e0"/>`,
    ),
    ...ticks.map((t) => `<text x="${px(t.x)}" y="${px(bottom + 18)}" text-anchor="middle">${t.label}</text>`),
    `<line x1="${margin.left}" y1="${px(bottom)}" x2="${widthPx - margin.right}" y2="${px(bottom)}" stroke="black"/>`,
    `<text x="${margin.left + (widthPx - margin.left - margin.right) / 2}" y="${heightPx - 15}" text-anchor="middle">percentile</text>`,
  ];
}

function latencyAxis(frame: Frame): string[] {
  const decimals = Math.max(0, -Math.floor(Math.log10(frame.latencyStepMs) + 1e-9));
  const count = Math.round(frame.latencyMsTop / frame.latencyStepMs);
  const ticks = Array.from({ length: count + 1 }, (_, i) => i * frame.latencyStepMs);
  const middle = margin.top + (heightPx - margin.top - margin.bottom) / 2;
  return [
    ...ticks.map(
      (ms) =>
        `<line x1="${margin.left}" y1="${px(frame.y(ms))}" x2="${widthPx - margin.right}" y2="${px(frame.y(ms))}" stroke="#e0e0e0"/>`,
    ),
    ...ticks.map(
      (ms) =>
        `<text x="${margin.left - 8}" y="${px(frame.y(ms) + 4)}" text-anchor="end">${ms.toFixed(decimals)}</text>`,
    ),
    `<line x1="${margin.left}" y1="${margin.top}" x2="${margin.left}" y2="${px(frame.y(0))}" stroke="black"/>`,
    `<text x="20" y="${px(middle)}" text-anchor="middle" transform="rotate(-90 20 ${px(middle)})">latency (ms)</text>`,
  ];
}

function seriesPath(series: LatencySeries, index: number, frame: Frame): string {
  const colour = seriesColours[index] as string;
  const points = series.points.map((p) => ({ x: px(frame.x(p.percentile)), y: px(frame.y(p.us / 1000)) }));
  const line = points.map((p) => `${p.x},${p.y}`).join(' L ');
  return [
    `<path d="M ${line}" fill="none" stroke="${colour}" stroke-width="2"><title>${escapeXml(series.label)}</title></path>`,
    ...points.map((p) => `<circle cx="${p.x}" cy="${p.y}" r="2.5" fill="${colour}"/>`),
  ].join('\n');
}

function legend(series: readonly LatencySeries[]): string[] {
  const left = margin.left + 15;
  // A rough text width (7 px a character) is enough for a backdrop that keeps lines off the labels.
  const boxWidthPx = 50 + 7 * Math.max(...series.map((s) => s.label.length));
  const box = `<rect x="${left - 8}" y="${margin.top + 4}" width="${boxWidthPx}" height="${series.length * 18 + 10}" fill="white" fill-opacity="0.85" stroke="#cccccc"/>`;
  return [
    box,
    ...series.flatMap((s, index) => {
      const y = margin.top + 15 + index * 18;
      const colour = seriesColours[index] as string;
      return [
        `<line x1="${left}" y1="${y}" x2="${left + 24}" y2="${y}" stroke="${colour}" stroke-width="3"/>`,
        `<text x="${left + 32}" y="${y + 4}">${escapeXml(s.label)}</text>`,
      ];
    }),
  ];
}

function px(value: number): string {
  return (Math.round(value * 10) / 10).toString();
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
