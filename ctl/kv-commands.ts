/**
 * put, get, del, compaction and version: argument checks in etcdctl's order (so the same bad
 * command line fails with the same message and exit code), then one KV call and the printer.
 */
import type { Message } from './client.js';
import type { CommandContext } from './context.js';
import type { FlagValues } from './flags.js';
import { goParseInt, goQuote } from './go-format.js';
import { ExitCode, exitWithError, type Output } from './output.js';
import { apiVersion, etcdctlVersion } from './usage.js';

/** A request for one of KV's unary methods, as a txn operation or a call. */
export type KvOp = { readonly method: 'Put' | 'Range' | 'DeleteRange'; readonly request: Message };

/**
 * Drops fields that hold their default. protobufjs encodes any field that is set, and etcd reads
 * a present-but-empty range_end as "every key from here", unlike the absent one Go clients send.
 */
export function withoutDefaults(request: Message): Message {
  const isDefault = (value: unknown): boolean =>
    value === false || value === 0 || value === '0' || value === '' || (Buffer.isBuffer(value) && value.length === 0);
  return Object.fromEntries(Object.entries(request).filter(([, value]) => !isDefault(value)));
}

/** The smallest key after every key with this prefix; "\0" (open end) when none exists. */
export function prefixRangeEnd(key: Buffer): Buffer {
  for (let index = key.length - 1; index >= 0; index--) {
    const byte = key[index] ?? 0;
    if (byte < 0xff) return Buffer.concat([key.subarray(0, index), Buffer.from([byte + 1])]);
  }
  return Buffer.from([0]);
}

/** etcdctl's getPutOp; `value` is the second argument or, without one, all of stdin. */
export function putOp(
  output: Output,
  flags: FlagValues,
  args: readonly string[],
  stdinValue: () => Buffer | undefined,
): KvOp {
  const needs = 'put command needs 1 argument and input from stdin or 2 arguments';
  if (args.length === 0) exitWithError(output, ExitCode.badArgs, needs);
  const ignoreValue = flags.bool('ignore-value');
  if (ignoreValue && args.length > 1)
    exitWithError(output, ExitCode.badArgs, "put command needs only 1 argument when 'ignore-value' is set");
  let value: Buffer = Buffer.alloc(0);
  if (!ignoreValue) {
    const given = args[1] !== undefined ? Buffer.from(args[1]) : stdinValue();
    if (given === undefined || given.length === 0) exitWithError(output, ExitCode.badArgs, needs);
    value = given;
  }
  const lease = goParseInt(flags.string('lease'), 16);
  if (!lease.ok) exitWithError(output, ExitCode.badArgs, `bad lease ID (${lease.error}), expecting ID in Hex`);
  const request = {
    key: Buffer.from(args[0] ?? ''),
    value,
    lease: lease.value.toString(),
    prev_kv: flags.bool('prev-kv'),
    ignore_value: ignoreValue,
    ignore_lease: flags.bool('ignore-lease'),
  };
  return { method: 'Put', request: withoutDefaults(request) };
}

const sortOrders: Record<string, number> = { '': 0, ASCEND: 1, DESCEND: 2 };
const sortTargets: Record<string, number> = { '': 0, KEY: 0, VERSION: 1, CREATE: 2, MODIFY: 3, VALUE: 4 };

/** etcdctl's getGetOp. */
export function getOp(output: Output, flags: FlagValues, args: readonly string[]): KvOp {
  if (args.length === 0)
    exitWithError(
      output,
      ExitCode.badArgs,
      'get command needs one argument as key and an optional argument as range_end',
    );
  const prefix = flags.bool('prefix');
  const fromKey = flags.bool('from-key');
  if (prefix && fromKey)
    exitWithError(output, ExitCode.badArgs, '`--prefix` and `--from-key` cannot be set at the same time, choose one');
  const consistency = flags.string('consistency');
  if (consistency !== 'l' && consistency !== 's')
    exitWithError(output, ExitCode.badFeature, `unknown consistency flag ${goQuote(Buffer.from(consistency))}`);
  if (args.length > 1 && (prefix || fromKey)) {
    exitWithError(
      output,
      ExitCode.badArgs,
      'too many arguments, only accept one argument when `--prefix` or `--from-key` is set',
    );
  }
  const order = sortOrders[flags.string('order').toUpperCase()];
  if (order === undefined) exitWithError(output, ExitCode.badFeature, `bad sort order ${flags.string('order')}`);
  const target = sortTargets[flags.string('sort-by').toUpperCase()];
  if (target === undefined) exitWithError(output, ExitCode.badFeature, `bad sort target ${flags.string('sort-by')}`);
  const countOnly = flags.optionalBool('count-only');
  if (countOnly && flags.bool('keys-only'))
    exitWithError(
      output,
      ExitCode.badArgs,
      '`--keys-only` and `--count-only` cannot be set at the same time, choose one',
    );
  const range = keyRange(args, prefix, fromKey);
  const rev = flags.int64('rev');
  const request = {
    ...range,
    limit: flags.int64('limit').toString(),
    revision: rev > 0n ? rev.toString() : '0',
    // The client drops an ascending sort by key: the server returns keys in that order anyway.
    sort_order: target === 0 && order === 1 ? 0 : order,
    sort_target: target,
    serializable: consistency === 's',
    keys_only: flags.bool('keys-only'),
    count_only: countOnly,
  };
  return { method: 'Range', request: withoutDefaults(request) };
}

/** Key and range end from `<key> [range_end]`, --prefix or --from-key, as clientv3 builds them. */
function keyRange(args: readonly string[], prefix: boolean, fromKey: boolean): { key: Buffer; range_end: Buffer } {
  let key: Buffer = Buffer.from(args[0] ?? '');
  let rangeEnd: Buffer = args[1] !== undefined ? Buffer.from(args[1]) : Buffer.alloc(0);
  if (prefix) {
    if (key.length === 0) [key, rangeEnd] = [Buffer.from([0]), Buffer.from([0])];
    else rangeEnd = prefixRangeEnd(key);
  }
  if (fromKey) {
    if (key.length === 0) key = Buffer.from([0]);
    rangeEnd = Buffer.from([0]);
  }
  return { key, range_end: rangeEnd };
}

/** etcdctl's getDelOp. */
export function delOp(output: Output, flags: FlagValues, args: readonly string[]): KvOp {
  if (args.length === 0 || args.length > 2)
    exitWithError(
      output,
      ExitCode.badArgs,
      'del command needs one argument as key and an optional argument as range_end',
    );
  const prefix = flags.bool('prefix');
  const fromKey = flags.bool('from-key');
  if (prefix && fromKey)
    exitWithError(output, ExitCode.badArgs, '`--prefix` and `--from-key` cannot be set at the same time, choose one');
  if (args.length > 1 && (prefix || fromKey)) {
    exitWithError(
      output,
      ExitCode.badArgs,
      'too many arguments, only accept one argument when `--prefix` or `--from-key` is set',
    );
  }
  return {
    method: 'DeleteRange',
    request: withoutDefaults({ ...keyRange(args, prefix, fromKey), prev_kv: flags.bool('prev-kv') }),
  };
}

/** `etcdctl put`. */
export async function runPut(context: CommandContext): Promise<void> {
  const stdinValue =
    context.args.length === 1 && !context.flags.bool('ignore-value') ? await context.stdin.readAll() : undefined;
  const op = putOp(context.output, context.flags, context.args, () => stdinValue);
  const printer = context.printer();
  printer.put(await context.kv(op.method, op.request));
}

/** `etcdctl get`. */
export async function runGet(context: CommandContext): Promise<void> {
  const op = getOp(context.output, context.flags, context.args);
  context.client();
  const response = await context.kv(op.method, op.request);
  if (context.flags.bool('print-value-only')) {
    if (context.format() !== 'simple')
      exitWithError(context.output, ExitCode.badArgs, 'print-value-only is only for `--write-out=simple`');
    context.valueOnly = true;
  }
  if (context.flags.bool('count-only') && context.format() !== 'fields') {
    exitWithError(context.output, ExitCode.badArgs, '--count-only is only for `--write-out=fields`');
  }
  context.printer().get(response);
}

/** `etcdctl del`. */
export async function runDel(context: CommandContext): Promise<void> {
  const op = delOp(context.output, context.flags, context.args);
  const printer = context.printer();
  printer.del(await context.kv(op.method, op.request));
}

/** `etcdctl compaction`. */
export async function runCompaction(context: CommandContext): Promise<void> {
  if (context.args.length !== 1) exitWithError(context.output, ExitCode.badArgs, 'compaction command needs 1 argument');
  const rev = goParseInt(context.args[0] ?? '', 10);
  if (!rev.ok) exitWithError(context.output, ExitCode.error, rev.error);
  await context.kv(
    'Compact',
    withoutDefaults({ revision: rev.value.toString(), physical: context.flags.bool('physical') }),
  );
  context.output.out(`compacted revision ${rev.value}\n`);
}

/** `etcdctl version`. */
export async function runVersion(context: CommandContext): Promise<void> {
  context.output.out(`etcdctl version: ${etcdctlVersion}\nAPI version: ${apiVersion}\n`);
}
