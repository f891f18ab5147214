/**
 * The order and overlap in which run-suite.ts starts test files, apart from the running, so it can
 * be tested alone.
 *
 * Each file is known by its last run's wall seconds and the cores it kept busy on average over them
 * (its CPU seconds, children included, over its wall seconds). Files start longest first, as many
 * at once as the cores allow: a file that mostly waits on elections, timers and child processes
 * takes a small share, so several of those run beside a file that computes.
 */

/** What the durations file records of one file's last run. */
export interface FileTimes {
  readonly seconds: number;
  /** CPU seconds of the file's process tree over its wall seconds. */
  readonly cores: number;
}

/** A file waiting to start. */
export interface QueuedFile {
  readonly file: string;
  readonly seconds: number;
  readonly cores: number;
  /** Runs with no other file beside it (it binds fixed ports or measures the machine). */
  readonly alone: boolean;
}

/** A file that is running. */
export interface RunningFile {
  readonly cores: number;
  readonly alone: boolean;
  /** When it should end by its recorded seconds. */
  readonly endsAtMs: number;
}

/** How much may run at once. */
export interface SuiteLimits {
  /** The sum of running files' cores; a file heavier than this still runs, on an otherwise idle suite. */
  readonly coresMax: number;
  readonly filesMax: number;
}

/** The cores taken by a file with no recorded run: a whole one, since it may compute throughout. */
export const coresUnknown = 1;
/** The least share a file is counted with, however little it computed last time. */
export const coresFloor = 0.2;

/**
 * `files` (paths under dist/test, as in `durations`) longest first by their last known seconds;
 * files with no known time go first, in name order, since a new file's time is the one not known.
 */
export function longestFirst(files: readonly string[], durations: ReadonlyMap<string, FileTimes>): string[] {
  const seconds = (file: string): number => durations.get(file)?.seconds ?? Number.POSITIVE_INFINITY;
  return [...files].sort((a, b) => {
    const [secondsA, secondsB] = [seconds(a), seconds(b)];
    if (secondsA !== secondsB) return secondsA < secondsB ? 1 : -1;
    return a < b ? -1 : a > b ? 1 : 0;
  });
}

/** The queue run-suite works through: the files run beside others longest first, then the alone ones. */
export function suiteQueue(
  together: readonly string[],
  alone: readonly string[],
  durations: ReadonlyMap<string, FileTimes>,
): QueuedFile[] {
  const queued = (file: string, isAlone: boolean): QueuedFile => {
    const times = durations.get(file);
    return {
      file,
      seconds: times?.seconds ?? Number.POSITIVE_INFINITY,
      cores: Math.max(coresFloor, times?.cores ?? coresUnknown),
      alone: isAlone,
    };
  };
  return [
    ...longestFirst(together, durations).map((file) => queued(file, false)),
    ...longestFirst(alone, durations).map((file) => queued(file, true)),
  ];
}

/**
 * When the queue's head could start if nothing else started first: once enough of the running
 * files have ended, by their recorded seconds, to leave room for its cores (all of them, for a file
 * that runs alone). A file past its recorded end is taken to end now.
 */
function headStartMs(head: QueuedFile, running: readonly RunningFile[], nowMs: number, coresMax: number): number {
  const ends = running.map((file) => ({ ...file, endsAtMs: Math.max(nowMs, file.endsAtMs) }));
  ends.sort((a, b) => a.endsAtMs - b.endsAtMs);
  let used = running.reduce((sum, file) => sum + file.cores, 0);
  for (const [index, file] of ends.entries()) {
    used -= file.cores;
    const last = index === ends.length - 1;
    if (last || (!head.alone && used + head.cores <= coresMax)) return file.endsAtMs;
  }
  return nowMs;
}

/**
 * The index in `queue` of the file to start now, or undefined to wait for a running file to end.
 * The head starts when its cores fit beside the running files (always, on an idle suite). When it
 * does not fit, a later file may start in the room left only if it should end before the head could
 * start anyway, so the longest files are never kept waiting by shorter ones.
 */
export function nextToStart(
  queue: readonly QueuedFile[],
  running: readonly RunningFile[],
  nowMs: number,
  limits: SuiteLimits,
): number | undefined {
  const head = queue[0];
  if (head === undefined) return undefined;
  if (running.length === 0) return 0;
  if (running.length >= limits.filesMax || running.some((file) => file.alone)) return undefined;
  const used = running.reduce((sum, file) => sum + file.cores, 0);
  if (!head.alone && used + head.cores <= limits.coresMax) return 0;
  const headStartsMs = headStartMs(head, running, nowMs, limits.coresMax);
  const index = queue.findIndex(
    (file) => !file.alone && used + file.cores <= limits.coresMax && nowMs + file.seconds * 1000 <= headStartsMs,
  );
  return index === -1 ? undefined : index;
}

/** Reads the durations file's text: each file's seconds and cores (an entry of bare seconds has unknown cores). */
export function parseDurations(text: string): Map<string, FileTimes> {
  const recorded = JSON.parse(text) as Record<string, number | FileTimes>;
  return new Map(
    Object.entries(recorded).map(([file, entry]) => [
      file,
      typeof entry === 'number' ? { seconds: entry, cores: coresUnknown } : entry,
    ]),
  );
}

/**
 * The durations file's next content: this run's times (seconds to one decimal, cores to two) over
 * the recorded ones, for files that still exist, by name, one file a line as prettier leaves it.
 */
export function durationsText(
  recorded: ReadonlyMap<string, FileTimes>,
  measured: ReadonlyMap<string, FileTimes>,
  existing: readonly string[],
): string {
  const merged = new Map(recorded);
  for (const [file, times] of measured)
    merged.set(file, { seconds: Math.round(times.seconds * 10) / 10, cores: Math.round(times.cores * 100) / 100 });
  const lines = existing
    .filter((file) => merged.has(file))
    .sort()
    .map((file) => {
      const times = merged.get(file)!;
      return `  ${JSON.stringify(file)}: { "seconds": ${times.seconds}, "cores": ${times.cores} }`;
    });
  return `{\n${lines.join(',\n')}\n}\n`;
}
