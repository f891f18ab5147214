/**
 * Help text in etcdctl's layout: its usage template rendered through Go's text/tabwriter with
 * tab padding (minwidth 0, tabwidth 8, padding 1), so columns line up exactly as etcdctl's do.
 */
import type { FlagSpec } from './flags.js';

export const etcdctlVersion = '3.4.23';
export const apiVersion = '3.4';

const tabWidth = 8;
const cellPadding = 1;

/** Aligns tab-terminated cells the way Go's tabwriter does when it pads with tabs. */
export function tabwrite(text: string): string {
  const lines = text.split('\n').map((line) => line.split('\t'));
  const out: string[] = [];
  formatBlock(lines, 0, lines.length, [], out);
  return out.join('\n');
}

/** Recursive column-block formatting, mirroring tabwriter's format(). */
function formatBlock(lines: string[][], start: number, end: number, widths: number[], out: string[]): void {
  const column = widths.length;
  let line0 = start;
  for (let index = start; index < end; index++) {
    if (column >= (lines[index]?.length ?? 0) - 1) continue;
    writeLines(lines, line0, index, widths, out);
    line0 = index;
    let width = 0;
    for (; index < end; index++) {
      const cells = lines[index] ?? [];
      if (column >= cells.length - 1) break;
      width = Math.max(width, [...(cells[column] ?? '')].length + cellPadding);
    }
    formatBlock(lines, line0, index, [...widths, width], out);
    line0 = index;
    index -= 1;
  }
  writeLines(lines, line0, end, widths, out);
}

function writeLines(lines: string[][], start: number, end: number, widths: number[], out: string[]): void {
  for (let index = start; index < end; index++) {
    const cells = lines[index] ?? [];
    let text = '';
    cells.forEach((cell, column) => {
      text += cell;
      const width = widths[column];
      if (width === undefined || column === cells.length - 1) return;
      const cellWidth = Math.ceil(width / tabWidth) * tabWidth;
      text += '\t'.repeat(Math.ceil((cellWidth - [...cell].length) / tabWidth));
    });
    out.push(text);
  }
}

/** One flag line as etcdctl's help prints it, before tab alignment. */
function flagLine(spec: FlagSpec): string {
  const head = spec.shorthand !== undefined ? `  -${spec.shorthand}, --${spec.name}` : `      --${spec.name}`;
  const value = spec.kind === 'string' ? JSON.stringify(spec.defaultText) : spec.defaultText;
  const assignment = spec.kind === 'bool' ? `[=${value}]` : `=${value}`;
  return `${head}${assignment}\t${spec.usage}\n`;
}

/** Visible flags sorted by name, as pflag lists them. */
export function flagUsages(specs: readonly FlagSpec[]): string {
  return [...specs]
    .filter((spec) => spec.hidden !== true)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map(flagLine)
    .join('');
}

/** What the help template needs to know about one command. */
export interface UsageInput {
  /** Full name below the root, e.g. "endpoint status"; empty for the root. */
  readonly path: string;
  readonly use: string;
  readonly short: string;
  readonly long?: string;
  readonly runnable: boolean;
  /** cobra's DisableFlagsInUseLine. */
  readonly disableFlagsInUseLine?: boolean;
  /** [path below this command, short] for every descendant, sorted. */
  readonly subcommands: ReadonlyArray<readonly [string, string]>;
  readonly localFlags: readonly FlagSpec[];
  readonly inheritedFlags: readonly FlagSpec[];
}

/** Renders etcdctl's help for one command. */
export function renderUsage(input: UsageInput): string {
  const isRoot = input.path === '';
  const name = isRoot ? 'etcdctl' : input.path;
  const useArgs = input.use.split(' ').slice(1).join(' ');
  const flagsText = input.disableFlagsInUseLine === true ? '' : ' [flags]';
  const useLine = ['etcdctl', input.path, useArgs].filter((part) => part !== '').join(' ') + flagsText;
  let text = `NAME:\n\t${name} - ${input.short}\n\nUSAGE:\n\t${useLine}\n`;
  if (isRoot) text += `\nVERSION:\n\t${etcdctlVersion}\n`;
  if (input.subcommands.length > 0) {
    text += `\nAPI VERSION:\n\t${apiVersion}\n\n\nCOMMANDS:\n`;
    for (const [path, short] of input.subcommands) text += `\t${path}\t${short}\n`;
  }
  if (input.long !== undefined) {
    text += '\nDESCRIPTION:\n';
    for (const line of input.long.replace(/^[\n\t ]+|[\n\t ]+$/g, '').split('\n')) text += `\t${line}\n`;
  }
  if (input.localFlags.length > 0) text += `\nOPTIONS:\n${flagUsages(input.localFlags)}`;
  if (input.inheritedFlags.length > 0) text += `\nGLOBAL OPTIONS:\n${flagUsages(input.inheritedFlags)}`;
  return tabwrite(text + '\n');
}
