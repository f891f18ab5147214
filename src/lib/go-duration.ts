/**
 * Go's time.Duration.String(), which etcd's help text and etcdctl's output use for durations; the
 * server's flag defaults are printed from the limits with it, so each default is written once.
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
