/** Deeply nested Txn requests, for the fuzzer and for the regression test of the nesting bound. */

/** A varint's bytes. */
function varint(value: number): number[] {
  const out: number[] = [];
  for (; value >= 0x80; value = Math.floor(value / 0x80)) out.push((value & 0x7f) | 0x80);
  out.push(value);
  return out;
}

/**
 * Wraps a Txn in `depth` levels of Txn.success -> RequestOp.request_txn: a valid message nested
 * as deep as a request of this size can be. Built inside out with the prefixes joined once.
 */
export function nestTxn(txn: Uint8Array, depth: number): Uint8Array {
  const prefixes: number[][] = [];
  let length = txn.length;
  for (let level = 0; level < depth; level++) {
    for (const tag of [0x22, 0x12]) {
      const prefix = [tag, ...varint(length)];
      length += prefix.length;
      prefixes.push(prefix);
    }
  }
  return Buffer.concat([...prefixes.reverse().map((prefix) => Buffer.from(prefix)), txn]);
}
