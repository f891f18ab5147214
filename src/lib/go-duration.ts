/**
 * Go's time.Duration text both ways: String(), which etcd's help text and etcdctl's output use
 * (the server's flag defaults are printed from the limits with it, so each default is written
 * once), and ParseDuration, which reads the server's duration flags and etcdctl's.
 */

/** Go's time.Duration.String() for a non-negative nanosecond count. */
export function goDurationString(durationNs: number): string {
  const ns = Math.round(durationNs);
  if (ns === 0) return '0s';
  if (ns < 1e3) return `${ns}ns`;
  if (ns < 1e6) return `${trimFraction(ns, 1e3)}µs`;
  if (ns < 1e9) return `${trimFraction(ns, 1e6)}ms`;
  const hours = Math.floor(ns / 3600e9);
  const minutes = Math.floor((ns % 3600e9) / 60e9);
  const seconds = `${trimFraction(ns % 60e9, 1e9)}s`;
  if (hours > 0) return `${hours}h${minutes}m${seconds}`;
  if (minutes > 0) return `${minutes}m${seconds}`;
  return seconds;
}

/** Whole units plus the fraction with trailing zeros removed, as Go prints durations. */
function trimFraction(value: number, unit: number): string {
  const whole = Math.floor(value / unit);
  const digits = String(unit).length - 1;
  const fraction = String(value % unit)
    .padStart(digits, '0')
    .replace(/0+$/, '');
  return fraction === '' ? String(whole) : `${whole}.${fraction}`;
}

/** What Go's time.ParseDuration makes of a text: nanoseconds, or which of its errors it would give. */
export type GoDurationParse =
  | { ok: true; durationNs: number }
  | { ok: false; problem: 'invalid' | 'missing unit' }
  | { ok: false; problem: 'unknown unit'; unit: string };

const durationUnitsNs: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3, // U+00B5 micro sign
  μs: 1e3, // U+03BC Greek mu
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Go's time.ParseDuration: "1h2m3.5s", "-100ms", ".5s", "0". */
export function parseGoDuration(text: string): GoDurationParse {
  let rest = text;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest.startsWith('-') ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === '0') return { ok: true, durationNs: 0 };
  if (rest === '') return { ok: false, problem: 'invalid' };
  let totalNs = 0;
  while (rest !== '') {
    const number = /^(\d*)(\.\d*)?/.exec(rest)?.[0] ?? '';
    if (number === '' || number === '.') return { ok: false, problem: 'invalid' };
    rest = rest.slice(number.length);
    const unit = /^[^\d.]*/.exec(rest)?.[0] ?? '';
    if (unit === '') return { ok: false, problem: 'missing unit' };
    const scale = durationUnitsNs[unit];
    if (scale === undefined) return { ok: false, problem: 'unknown unit', unit };
    rest = rest.slice(unit.length);
    totalNs += Number(number) * scale;
  }
  return { ok: true, durationNs: Math.round(sign * totalNs) };
}

/** Go's time.ParseDuration error for a text parseGoDuration refused; `quote` is Go's %q (JSON's quoting fits ASCII). */
export function goDurationErrorText(
  text: string,
  parsed: Exclude<GoDurationParse, { ok: true }>,
  quote: (text: string) => string = JSON.stringify,
): string {
  if (parsed.problem === 'missing unit') return `time: missing unit in duration ${quote(text)}`;
  if (parsed.problem === 'unknown unit') return `time: unknown unit ${quote(parsed.unit)} in duration ${quote(text)}`;
  return `time: invalid duration ${quote(text)}`;
}
