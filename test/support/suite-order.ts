/** The order in which run-suite.ts starts test files, apart from the running, so it can be tested alone. */

/**
 * `files` (paths under dist/test, as in `durations`) longest first by their last known seconds;
 * files with no known time go first, in name order, since a new file's time is the one not known.
 */
export function longestFirst(files: readonly string[], durations: ReadonlyMap<string, number>): string[] {
  const seconds = (file: string): number => durations.get(file) ?? Number.POSITIVE_INFINITY;
  return [...files].sort((a, b) => {
    const [secondsA, secondsB] = [seconds(a), seconds(b)];
    if (secondsA !== secondsB) return secondsA < secondsB ? 1 : -1;
    return a < b ? -1 : a > b ? 1 : 0;
  });
}

/**
 * The durations file's next content: this run's seconds (one decimal) over the recorded ones, for
 * files that still exist, by name, in the JSON shape prettier leaves as it is.
 */
export function durationsText(
  recorded: ReadonlyMap<string, number>,
  measuredMs: ReadonlyMap<string, number>,
  existing: readonly string[],
): string {
  const merged = new Map(recorded);
  for (const [file, ms] of measuredMs) merged.set(file, Math.round(ms / 100) / 10);
  const entries = existing.filter((file) => merged.has(file)).sort();
  return `${JSON.stringify(Object.fromEntries(entries.map((file) => [file, merged.get(file)])), null, 2)}\n`;
}
