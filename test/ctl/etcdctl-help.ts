/**
 * etcdctl's command tree as its own help text tells it: every command path `etcdctl --help`
 * lists, each with the usage line and the flags of `etcdctl <path> --help`. The sweep in
 * sweep-cases.ts is generated from this, so a command or flag etcdctl has is never left out by
 * a hand-written list.
 */
import assert from 'node:assert/strict';
import { runCommand } from '../support/etcdctl.js';
import { etcdctlBinaryPath } from '../support/sut.js';

/** How a flag takes its value, read from the default its help line shows. */
export type FlagKind = 'bool' | 'int' | 'duration' | 'string' | 'list';

export interface HelpFlag {
  readonly name: string;
  readonly shorthand?: string;
  readonly kind: FlagKind;
  /** The default as help prints it, quotes and brackets removed. */
  readonly defaultValue: string;
  readonly description: string;
}

export interface HelpCommand {
  /** The words after `etcdctl`, such as ['lease', 'grant']. */
  readonly path: readonly string[];
  /** The usage line without the leading `etcdctl <path>`. */
  readonly usage: string;
  /** `<name>` placeholders of the usage line, in order. */
  readonly requiredArgs: readonly string[];
  /** `[name]` placeholders (other than [options], [flags] and [--]), in order. */
  readonly optionalArgs: readonly string[];
  /** The command's own flags, --help left out. */
  readonly flags: readonly HelpFlag[];
}

export interface HelpTree {
  readonly commands: readonly HelpCommand[];
  /** etcdctl's global flags, --help left out. */
  readonly globalFlags: readonly HelpFlag[];
}

/** Help text runs (one per command path) in flight at once. */
const helpRunsInFlightMax = 4;

/** The lines of `text` between a line `heading` and the next blank line. */
function section(text: string, heading: string): string[] {
  const lines = text.split('\n');
  const start = lines.indexOf(heading);
  assert.ok(start >= 0, `expected a ${heading} section in etcdctl's help, saw:\n${text}`);
  const end = lines.findIndex((line, index) => index > start && line.trim() === '');
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

function flagKind(bracketed: boolean, value: string): FlagKind {
  if (bracketed) return 'bool';
  if (value.startsWith('"')) return 'string';
  if (value.startsWith('[')) return 'list';
  if (/^\d+$/.test(value)) return 'int';
  assert.match(value, /^\d+(ns|us|ms|s|m|h)$/, `expected a known flag default, saw ${value}`);
  return 'duration';
}

/** The flags of an OPTIONS section; pflag prints `  -s, --name=default\tdescription`. */
export function parseFlags(lines: readonly string[]): HelpFlag[] {
  return lines.flatMap((line) => {
    const match = /^ {2}(?:-(\w), | {4})--([\w-]+)(?:\[=([^\]]*)\]|=(\S*))\t+(.*)$/.exec(line);
    assert.ok(match !== null, `expected a flag line, saw ${JSON.stringify(line)}`);
    const [, shorthand, name = '', bracketed, plain, description = ''] = match;
    if (name === 'help') return [];
    const raw = bracketed ?? plain ?? '';
    const kind = flagKind(bracketed !== undefined, raw);
    const defaultValue = raw.replace(/^"(.*)"$/, '$1').replace(/^\[(.*)\]$/, '$1');
    return [{ name, ...(shorthand === undefined ? {} : { shorthand }), kind, defaultValue, description }];
  });
}

/** One command path's help: its usage line and its own flags. */
export function parseCommandHelp(path: readonly string[], text: string): HelpCommand {
  const usageLine = section(text, 'USAGE:')[0]?.trim() ?? '';
  const prefix = ['etcdctl', ...path].join(' ');
  assert.ok(usageLine.startsWith(prefix), `expected usage of ${prefix}, saw ${usageLine}`);
  const usage = usageLine.slice(prefix.length).trim();
  // A parenthesised remark, such as put's "(<value> can also be given from stdin)", names no argument.
  const words = usage.replace(/\([^)]*\)/g, '');
  const requiredArgs = [...words.matchAll(/<([^>]+)>/g)].map((match) => match[1] ?? '');
  const optionalArgs = [...words.matchAll(/\[([^\]]+)\]/g)]
    .map((match) => match[1] ?? '')
    .filter((name) => !['options', 'flags', '--'].includes(name));
  // Commands without flags of their own but --help still print an OPTIONS section.
  const flags = text.includes('\nOPTIONS:\n') ? parseFlags(section(text, 'OPTIONS:')) : [];
  return { path, usage, requiredArgs, optionalArgs, flags };
}

/** Runs at most `limit` of `tasks` at a time, keeping their order in the answer. */
async function inBatches<T>(tasks: ReadonlyArray<() => Promise<T>>, limit: number): Promise<T[]> {
  const results: T[] = [];
  for (let start = 0; start < tasks.length; start += limit)
    results.push(...(await Promise.all(tasks.slice(start, start + limit).map((task) => task()))));
  return results;
}

async function etcdctlHelp(path: readonly string[]): Promise<string> {
  const result = await runCommand(etcdctlBinaryPath, [...path, '--help'], { env: { ETCDCTL_API: '3' } });
  assert.equal(result.code, 0, `etcdctl ${path.join(' ')} --help: ${result.stderr}`);
  return result.stdout;
}

/** Reads etcdctl's command tree from its help, as /usr/bin/etcdctl prints it now. */
export async function readHelpTree(): Promise<HelpTree> {
  const top = await etcdctlHelp([]);
  const paths = section(top, 'COMMANDS:').map((line) => (line.trim().split('\t')[0] ?? '').split(' '));
  assert.ok(paths.length > 0, `expected commands in etcdctl's help, saw:\n${top}`);
  const globalFlags = parseFlags(section(top, 'OPTIONS:'));
  const texts = await inBatches(
    paths.map((path) => () => etcdctlHelp(path)),
    helpRunsInFlightMax,
  );
  const commands = paths.map((path, index) => parseCommandHelp(path, texts[index] ?? ''));
  return { commands, globalFlags };
}
