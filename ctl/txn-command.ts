/**
 * `etcdctl txn`: reads compares, success ops and failure ops from stdin (each section ends with
 * an empty line), in etcdctl's syntax, e.g. `mod("key") > "3"` and `put key "some value"`.
 */
import type { Message } from './client.js';
import { delFlags, delUse, getFlags, getUse, helpFlag, putFlags, putUse } from './command-tree.js';
import type { CommandContext } from './context.js';
import { FlagValues, parseFlags, type FlagSpec } from './flags.js';
import { goParseInt, goQuote, goUnquote } from './go-format.js';
import { delOp, getOp, putOp, type KvOp } from './kv-commands.js';
import { ExitCode, exitWithError, goPanic, type Output } from './output.js';

/** Lines per txn section we accept before calling the input runaway. */
const txnSectionLinesMax = 1_000_000;

/** `etcdctl txn [-i]`. */
export async function runTxn(context: CommandContext): Promise<void> {
  const { output } = context;
  if (context.args.length !== 0) exitWithError(output, ExitCode.badArgs, 'txn command does not accept argument');
  context.client();
  const interactive = context.flags.bool('interactive');
  const prompt = (text: string): void => (interactive ? output.out(`${text}\n`) : undefined);
  prompt('compares:');
  const compare = (await readSection(context)).map((line) => parseCompare(output, line));
  prompt('success requests (get, put, del):');
  const success = (await readSection(context)).map((line) => requestOp(parseRequest(output, line)));
  prompt('failure requests (get, put, del):');
  const failure = (await readSection(context)).map((line) => requestOp(parseRequest(output, line)));
  const printer = context.printer();
  // etcdctl commits a txn without a deadline.
  printer.txn(await context.client().call('KV', 'Txn', { compare, success, failure }, undefined));
}

/** Trimmed lines up to the first empty one; running out of input is etcdctl's "EOF" error. */
async function readSection(context: CommandContext): Promise<string[]> {
  const lines: string[] = [];
  for (let count = 0; count < txnSectionLinesMax; count++) {
    const line = await context.stdin.readLine();
    if (line === undefined) exitWithError(context.output, ExitCode.invalidInput, 'EOF');
    const trimmed = line.trim();
    if (trimmed === '') return lines;
    lines.push(trimmed);
  }
  exitWithError(context.output, ExitCode.invalidInput, `more than ${txnSectionLinesMax} lines in one txn section`);
}

function requestOp(op: KvOp): Message {
  if (op.method === 'Put') return { request_put: op.request };
  if (op.method === 'Range') return { request_range: op.request };
  return { request_delete_range: op.request };
}

const compareResults: Record<string, number> = { '=': 0, '>': 1, '<': 2, '!=': 3 };
const integerTargets: Record<string, [number, string]> = {
  ver: [0, 'version'],
  version: [0, 'version'],
  c: [1, 'create_revision'],
  create: [1, 'create_revision'],
  m: [2, 'mod_revision'],
  mod: [2, 'mod_revision'],
};

/** Parses `target("key") op "value"` like etcdctl's parseCompare. */
export function parseCompare(output: Output, line: string): Message {
  const open = line.indexOf('(');
  if (open < 0) exitWithError(output, ExitCode.invalidInput, `malformed comparison: ${line}`);
  const target = line.slice(0, open);
  const scanned = scanCompare(line.slice(open + 1));
  if (scanned.count !== 3) {
    const got = `${target}(${goQuote(scanned.key)}) ${scanned.op} ${goQuote(scanned.value)}`;
    exitWithError(output, ExitCode.invalidInput, `malformed comparison: ${line}; got ${got}`);
  }
  const key = scanned.key;
  const integer = integerTargets[target];
  if (integer !== undefined) {
    const parsed = goParseInt(scanned.value.toString(), 10);
    if (!parsed.ok) exitWithError(output, ExitCode.invalidInput, `invalid txn compare request: ${line}`);
    return { result: resultOf(output, scanned.op), target: integer[0], key, [integer[1]]: parsed.value.toString() };
  }
  if (target === 'val' || target === 'value') {
    return { result: resultOf(output, scanned.op), target: 3, key, value: scanned.value };
  }
  if (target === 'lease') {
    resultOf(output, scanned.op);
    // etcdctl 3.4 hands the lease operand to clientv3 as a string, which it rejects with a panic.
    goPanic(output, 'bad value');
  }
  exitWithError(output, ExitCode.invalidInput, `malformed comparison: ${line} (unknown target ${target})`);
}

function resultOf(output: Output, op: string): number {
  const result = compareResults[op];
  if (result === undefined) goPanic(output, 'Unknown result op');
  return result;
}

/** fmt.Sscanf(text, "%q) %s %q"): how many operands were read, and their values. */
function scanCompare(text: string): { count: number; key: Buffer; op: string; value: Buffer } {
  const result: { count: number; key: Buffer; op: string; value: Buffer } = {
    count: 0,
    key: Buffer.alloc(0),
    op: '',
    value: Buffer.alloc(0),
  };
  const first = scanQuoted(text, 0);
  if (first === undefined) return result;
  [result.key, result.count] = [first.value, 1];
  let position = first.next;
  if (text[position] !== ')') return result;
  position = skipSpaces(text, position + 1);
  const op = /^[^ \t\r\n]+/.exec(text.slice(position))?.[0];
  if (op === undefined) return result;
  [result.op, result.count] = [op, 2];
  const last = scanQuoted(text, skipSpaces(text, position + op.length));
  if (last === undefined) return result;
  [result.value, result.count] = [last.value, 3];
  return result;
}

function skipSpaces(text: string, position: number): number {
  let next = position;
  while (next < text.length && ' \t\r\n'.includes(text[next] ?? '')) next += 1;
  return next;
}

/** Go's %q scan verb: one double- or back-quoted literal after optional spaces. */
function scanQuoted(text: string, start: number): { value: Buffer; next: number } | undefined {
  const position = skipSpaces(text, start);
  const quote = text[position];
  if (quote !== '"' && quote !== '`') return undefined;
  let end = position + 1;
  while (end < text.length && text[end] !== quote) end += quote === '"' && text[end] === '\\' ? 2 : 1;
  if (end >= text.length) return undefined;
  const value = goUnquote(text.slice(position, end + 1));
  return value === undefined ? undefined : { value, next: end + 1 };
}

type OpBuilder = (output: Output, flags: FlagValues, args: readonly string[]) => KvOp;

const requestCommands: ReadonlyArray<readonly [string, string, readonly FlagSpec[], OpBuilder]> = [
  ['put', putUse, putFlags, (output, flags, args) => putOp(output, flags, args, () => undefined)],
  ['get', getUse, getFlags, getOp],
  ['del', delUse, delFlags, delOp],
];

/** Parses one success/failure line (`put k v`, `get k --prefix`, `del k`) like etcdctl does. */
export function parseRequest(output: Output, line: string): KvOp {
  const args = argify(output, line);
  if (args.length < 2) exitWithError(output, ExitCode.invalidInput, `invalid txn compare request: ${line}`);
  const invalid = (): never => exitWithError(output, ExitCode.invalidInput, `invalid txn request: ${line}`);
  const name = args[0] ?? '';
  const matches = requestCommands.filter(([command]) => command === name || command.startsWith(name));
  const exact = matches.find(([command]) => command === name);
  const chosen = exact ?? (matches.length === 1 ? matches[0] : undefined);
  if (chosen === undefined) return invalid();
  const [command, use, specs, build] = chosen;
  // Inside txn etcdctl 3.4's own flag set applies, so newer (hidden) flags are unknown here.
  const visible = [...specs.filter((spec) => spec.hidden !== true), helpFlag(command)];
  const flags = new FlagValues(visible);
  const parsed = parseFlags(args.slice(1), flags);
  if (!parsed.ok) output.err(cobraUsage(use, visible));
  if (!parsed.ok || parsed.help) return invalid();
  return build(output, flags, parsed.args);
}

const pflagTypeNames: Record<string, string> = {
  bool: '',
  string: 'string',
  int64: 'int',
  duration: 'duration',
  stringSlice: 'strings',
};
const zeroDefaults = new Set(['false', '', '0', '0s', '[]']);

/** cobra's stock usage text (etcdctl prints it on stderr when a txn line has a bad flag). */
function cobraUsage(use: string, specs: readonly FlagSpec[]): string {
  const sorted = [...specs].sort((a, b) => (a.name < b.name ? -1 : 1));
  const heads = sorted.map((spec) => {
    const typeName = pflagTypeNames[spec.kind] ?? '';
    return `  ${spec.shorthand !== undefined ? `-${spec.shorthand}, ` : '    '}--${spec.name}${typeName === '' ? '' : ` ${typeName}`}`;
  });
  const width = Math.max(...heads.map((head) => head.length)) + 1;
  const lines = sorted.map((spec, index) => {
    const head = heads[index] ?? '';
    const shown = spec.kind === 'string' ? goQuote(Buffer.from(spec.defaultText)) : spec.defaultText;
    const suffix =
      zeroDefaults.has(spec.defaultText) && spec.kind !== 'string'
        ? ''
        : spec.defaultText === ''
          ? ''
          : ` (default ${shown})`;
    return `${head} ${' '.repeat(width - head.length)} ${spec.usage}${suffix}`;
  });
  return `Usage:\n   ${use} [flags]\n\nFlags:\n${lines.join('\n')}\n\n`;
}

const argPattern = /"(?:[^"\\]|\\.)*"|'[^']*'|[^'"\t\n\f\r ][^\t\n\f\r ]*[^'"\t\n\f\r ]?/g;

/** etcdctl's argify: shell-like words, double quotes unescaped Go-style. */
export function argify(output: Output, line: string): string[] {
  const args = line.match(argPattern) ?? [];
  return args.map((arg) => {
    if (arg.startsWith("'")) {
      // etcdctl slices with the argument count rather than the word length; kept for parity.
      const high = args.length - 1;
      const length = Buffer.byteLength(arg);
      if (high > length || high < 1)
        goPanic(
          output,
          `runtime error: slice bounds out of range [${high < 1 ? `1:${high}` : `:${high}`}]${high > length ? ` with length ${length}` : ''}`,
        );
      return Buffer.from(arg).subarray(1, high).toString();
    }
    if (arg.startsWith('"')) {
      const value = goUnquote(arg);
      if (value === undefined) exitWithError(output, ExitCode.invalidInput, 'unexpected EOF');
      return value.toString();
    }
    return arg;
  });
}
