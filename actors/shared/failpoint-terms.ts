/**
 * gofail's term language, parsed: `[P%][N*]action[(arg)]`, several joined by `->` (when one term
 * has run its N times, the next takes over). Actions: `off`, `panic`, `return(arg)` (the
 * operation fails; an errno name such as EIO or ENOSPC makes the error look like the file system's),
 * `sleep(ms)` or `sleep("1s")`, `pause` (until the point is set again or cleared), and `print`.
 * Pure: the registry keeps the counts.
 */
import { parseGoDuration } from '../../src/lib/go-duration.js';

export type FailpointAction =
  | { kind: 'off' }
  | { kind: 'panic' }
  | { kind: 'return'; value: string }
  | { kind: 'sleep'; ms: number }
  | { kind: 'pause' }
  | { kind: 'print' };

export interface FailpointTerm {
  /** Percent chance the term runs when hit (100: always). */
  percent: number;
  /** How many times it may run before the next term takes over (Infinity: no limit). */
  count: number;
  action: FailpointAction;
}

/** A term list that gofail would refuse, with its reason. */
export class FailpointTermError extends Error {
  constructor(text: string, reason: string) {
    super(`failpoint: could not parse terms ${JSON.stringify(text)}: ${reason}`);
    this.name = 'FailpointTermError';
  }
}

const termPattern = /^(?:(\d+(?:\.\d+)?)%)?(?:(\d+)\*)?([a-z]+)(?:\((.*)\))?$/;

/** Parses `text` into its terms; throws FailpointTermError on anything gofail would not take. */
export function parseFailpointTerms(text: string): FailpointTerm[] {
  const terms = text.split('->').map((part) => parseTerm(text, part.trim()));
  if (terms.length === 0) throw new FailpointTermError(text, 'no terms');
  return terms;
}

function parseTerm(text: string, part: string): FailpointTerm {
  const match = termPattern.exec(part);
  if (match === null) throw new FailpointTermError(text, `bad term ${JSON.stringify(part)}`);
  const [, percentText, countText, name, argument] = match;
  const percent = percentText === undefined ? 100 : Number(percentText);
  if (!(percent >= 0 && percent <= 100)) throw new FailpointTermError(text, `bad percent ${percentText}`);
  const count = countText === undefined ? Infinity : Number(countText);
  return { percent, count, action: parseAction(text, name as string, argument) };
}

function parseAction(text: string, name: string, argument: string | undefined): FailpointAction {
  switch (name) {
    case 'off':
    case 'panic':
    case 'pause':
    case 'print':
      return { kind: name };
    case 'return':
      return { kind: 'return', value: unquote(argument ?? '') };
    case 'sleep':
      return { kind: 'sleep', ms: sleepMs(text, unquote(argument ?? '')) };
    default:
      throw new FailpointTermError(text, `unknown action ${JSON.stringify(name)}`);
  }
}

/** gofail's sleep takes milliseconds as a number or a Go duration as a string. */
function sleepMs(text: string, argument: string): number {
  if (/^\d+$/.test(argument)) return Number(argument);
  const parsed = parseGoDuration(argument);
  if (!parsed.ok || parsed.durationNs < 0) throw new FailpointTermError(text, `bad sleep ${JSON.stringify(argument)}`);
  return parsed.durationNs / 1e6;
}

function unquote(argument: string): string {
  const trimmed = argument.trim();
  return trimmed.length >= 2 && trimmed.startsWith('"') && trimmed.endsWith('"') ? trimmed.slice(1, -1) : trimmed;
}

/** The failpoints of a GOFAIL_FAILPOINTS value: "name=terms;name2=terms", in order. */
export function parseFailpointList(text: string): [string, string][] {
  const pairs: [string, string][] = [];
  for (const item of text.split(';')) {
    if (item.trim() === '') continue;
    const equals = item.indexOf('=');
    if (equals <= 0) throw new FailpointTermError(text, `expected name=terms, saw ${JSON.stringify(item)}`);
    pairs.push([item.slice(0, equals).trim(), item.slice(equals + 1).trim()]);
  }
  return pairs;
}
