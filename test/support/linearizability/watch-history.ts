/**
 * The writes of a KV history in the form the watch checker (../watch-checker.ts) replays: each
 * answered write that made a revision is acknowledged at that revision, each write of unknown
 * outcome is an intent the watchers may show to have happened. Put values must be unique per
 * write for unknown writes to be told apart.
 */
import { WriteHistory, type WriteIntent } from '../watch-checker.js';
import type { Operation } from './checker.js';
import type { KvOutput, TxnRequestOp } from './kv-model.js';

/** The write history of `ops`; read-only operations and writes that changed nothing are left out. */
export function writeHistoryOf(ops: readonly Operation[]): WriteHistory {
  const history = new WriteHistory();
  for (const op of ops) {
    const input = op.input;
    if (op.output === undefined) {
      // Either branch of an unknown txn may have run; its success branch is the one that writes here.
      const branch = input.type === 'txn' ? input.success : [input];
      const intent = intentOf(`#${op.id}`, branch);
      if (intent !== undefined) history.markUnknown(intent, op.error ?? 'outcome unknown');
      continue;
    }
    const branch = input.type === 'txn' ? (wroteSuccess(op.output) ? input.success : input.failure) : [input];
    const deleted = deletedKeys(branch, op.output);
    const intent = intentOf(
      `#${op.id}`,
      branch.filter((o) => o.type !== 'delete' || deleted.includes(o.key)),
    );
    if (intent !== undefined) history.acknowledge(intent, op.output.revision, op.output.revision, deleted);
  }
  return history;
}

function wroteSuccess(output: KvOutput): boolean {
  return output.type !== 'txn' || output.succeeded;
}

/** Keys the answered op reports deleted, in its order. */
function deletedKeys(branch: readonly TxnRequestOp[], output: KvOutput): string[] {
  if (output.type === 'delete') return output.deleted > 0 ? [(branch[0] as TxnRequestOp).key] : [];
  if (output.type !== 'txn') return [];
  return branch
    .filter((op, i) => {
      const result = output.results[i];
      return op.type === 'delete' && result?.type === 'delete' && result.deleted > 0;
    })
    .map((op) => op.key);
}

/**
 * One branch as a WriteIntent: at most one single-key delete, before the puts (the only shapes
 * the chaos workload makes); undefined when the branch writes nothing.
 */
function intentOf(id: string, branch: readonly TxnRequestOp[]): WriteIntent | undefined {
  const deletes = branch.filter((op) => op.type === 'delete');
  const puts = branch.flatMap((op) => (op.type === 'put' ? [[op.key, op.value] as const] : []));
  if (deletes.length > 1) throw new Error(`${id}: the watch replay takes one delete per write, saw ${deletes.length}`);
  const [remove] = deletes;
  if (remove !== undefined && branch.indexOf(remove) > 0 && puts.length > 0)
    throw new Error(`${id}: the watch replay takes the delete before the puts`);
  if (remove === undefined && puts.length === 0) return undefined;
  return {
    id,
    ...(remove === undefined ? {} : { deleteRange: { key: remove.key, rangeEnd: `${remove.key}\0` } }),
    puts,
  };
}
