/**
 * `etcdctl make-mirror <destination>`: copies the keys under --prefix (every key by default) as
 * of one revision into the destination cluster, then follows the source's changes from the next
 * revision, one destination txn per source revision, printing the count of copied changes every
 * 30 seconds, as clientv3's mirror syncer and etcdctl do.
 */
import { errors } from '../src/api/errors.js';
import { loadCaBundle, loadKeyPair } from '../src/config/tls-files.js';
import { CtlRpcError, EtcdConnection, rpcErrorText, type Message } from './client.js';
import type { CommandContext } from './context.js';
import { prefixRangeEnd } from './kv-commands.js';
import { ExitCode, exitWithError } from './output.js';
import type { ClientTls } from './security.js';

/** clientv3's mirror reads the base in pages of this many keys. */
const baseBatchKeys = 1000;
/** etcdctl prints how many changes it copied this often. */
const progressIntervalMs = 30_000;

/** `etcdctl make-mirror [options] <destination>`. */
export async function runMakeMirror(context: CommandContext): Promise<void> {
  const { output, flags, args } = context;
  if (args.length !== 1) exitWithError(output, ExitCode.badArgs, 'make-mirror takes one destination argument');
  const destination = new EtcdConnection([args[0] ?? ''], destinationTls(context));
  const source = context.client();
  const prefix = Buffer.from(flags.string('prefix'));
  let total = 0;
  const progress = setInterval(() => output.out(`${total}\n`), progressIntervalMs);
  try {
    const first = await source.call('KV', 'Range', { key: Buffer.from('foo') }, context.commandTimeoutMs);
    const revision = BigInt(first.header.revision as string);
    if (flags.bool('no-dest-prefix') && flags.string('dest-prefix') !== '')
      exitWithError(
        output,
        ExitCode.badArgs,
        '`--dest-prefix` and `--no-dest-prefix` cannot be set at the same time, choose one',
      );
    const destPrefix = flags.bool('no-dest-prefix') ? '' : flags.string('dest-prefix') || flags.string('prefix');
    const rename = (key: Buffer): Buffer => {
      const text = key.toString('latin1');
      const at = text.indexOf(prefix.toString('latin1'));
      if (at < 0) return key;
      return Buffer.from(
        text.slice(0, at) + Buffer.from(destPrefix).toString('latin1') + text.slice(at + prefix.length),
        'latin1',
      );
    };
    const span =
      prefix.length === 0
        ? { key: Buffer.from([0]), rangeEnd: Buffer.from([0]) }
        : { key: prefix, rangeEnd: prefixRangeEnd(prefix) };
    let key = span.key;
    for (;;) {
      const page = await source.call(
        'KV',
        'Range',
        { key, range_end: span.rangeEnd, limit: String(baseBatchKeys), revision: revision.toString() },
        undefined,
      );
      const kvs = page.kvs as Message[];
      for (const kv of kvs) {
        await destination.call('KV', 'Put', { key: rename(kv.key as Buffer), value: kv.value }, undefined);
        total += 1;
      }
      const last = kvs[kvs.length - 1];
      if (page.more !== true || last === undefined) break;
      key = Buffer.concat([last.key as Buffer, Buffer.from([0])]);
    }
    await followUpdates(context, destination, span, revision + 1n, rename, (count) => (total += count));
  } catch (error) {
    if (!(error instanceof CtlRpcError)) throw error;
    exitWithError(output, ExitCode.error, rpcErrorText(error));
  } finally {
    clearInterval(progress);
    destination.close();
  }
}

/** The destination's TLS from the --dest-* flags, as etcdctl builds its second client. */
function destinationTls(context: CommandContext): { tls?: ClientTls } {
  const { flags } = context;
  const [cert, key, cacert] = [flags.string('dest-cert'), flags.string('dest-key'), flags.string('dest-cacert')];
  if (cert === '' && key === '' && cacert === '' && flags.bool('dest-insecure-transport')) return {};
  const tls: ClientTls = { skipVerify: false };
  try {
    if (cert !== '' || key !== '') Object.assign(tls, loadKeyPair(cert, key));
    if (cacert !== '') tls.ca = loadCaBundle(cacert);
  } catch (error) {
    exitWithError(context.output, ExitCode.badArgs, (error as Error).message);
  }
  return { tls };
}

/** Copies the source's changes from `startRevision` on, one destination txn per source revision. */
async function followUpdates(
  context: CommandContext,
  destination: EtcdConnection,
  span: { key: Buffer; rangeEnd: Buffer },
  startRevision: bigint,
  rename: (key: Buffer) => Buffer,
  copied: (count: number) => void,
): Promise<void> {
  const stream = await context.client().duplex('Watch', 'Watch');
  stream.write({
    create_request: { key: span.key, range_end: span.rangeEnd, start_revision: startRevision.toString() },
  });
  for await (const response of stream as AsyncIterable<Message>) {
    if (String(response.compact_revision) !== '0') throw new CtlRpcError(errors.compacted().message);
    let ops: Message[] = [];
    let lastRevision = '';
    for (const event of response.events as Message[]) {
      const revision = String(event.kv.mod_revision);
      if (lastRevision !== '' && revision !== lastRevision) {
        await destination.call('KV', 'Txn', { success: ops }, undefined);
        ops = [];
      }
      lastRevision = revision;
      const key = rename(event.kv.key as Buffer);
      ops.push(event.type === 1 ? { request_delete_range: { key } } : { request_put: { key, value: event.kv.value } });
      copied(1);
    }
    if (ops.length > 0) await destination.call('KV', 'Txn', { success: ops }, undefined);
  }
}
