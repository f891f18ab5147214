/**
 * Defragmentation of the LMDB backend: writes `--records` revisions of 250-byte values, deletes
 * every other one, then defragments, reporting the file and in-use sizes before and after, the
 * time the defragmentation took and the longest the event loop stalled meanwhile (a 5 ms ticker's
 * lateness): the copy runs on lmdb-js's thread, so the member keeps serving.
 *
 *   node dist/bench/defrag.js [--records 100000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmdbBackend } from '../src/mvcc/lmdb-backend.js';

const recordsDefault = 100_000;
const recordsMax = 2_000_000;
const valueBytes = 250;
const tickerMs = 5;
const flushEveryRecords = 5_000;

function recordsArgument(): number {
  const at = process.argv.indexOf('--records');
  const records = at === -1 ? recordsDefault : Number(process.argv[at + 1]);
  if (!Number.isInteger(records) || records < 2 || records > recordsMax)
    throw new Error(`--records takes 2..${recordsMax}, saw ${process.argv[at + 1]}`);
  return records;
}

async function fill(backend: LmdbBackend, records: number): Promise<void> {
  const value = new Uint8Array(valueBytes).fill(0x78);
  for (let main = 1; main <= records; main++) {
    const kv = { key: Buffer.from(`k${main}`), value, createRevision: main, modRevision: main, version: 1, lease: 0n };
    backend.write({ puts: [{ rev: { main, sub: 0 }, stored: { kv, tombstone: false } }], deletes: [], meta: {} });
    if (main % flushEveryRecords === 0) await backend.flush();
  }
  const deletes = Array.from({ length: Math.ceil(records / 2) }, (_, i) => ({ main: 2 * i + 1, sub: 0 }));
  backend.write({ puts: [], deletes, meta: { consistentIndex: records + 1 } });
  await backend.flush();
}

async function main(): Promise<void> {
  const records = recordsArgument();
  const dir = mkdtempSync(join(tmpdir(), 'tsetcd-bench-defrag-'));
  const path = join(dir, 'db');
  const backend = LmdbBackend.open(path, { batchIntervalMs: 0 });
  try {
    await fill(backend, records);
    const fileBytesBefore = backend.sizeBytes();
    const inUseBytesBefore = backend.sizeInUseBytes();
    let last = performance.now();
    let stallMs = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      stallMs = Math.max(stallMs, now - last - tickerMs);
      last = now;
    }, tickerMs);
    const startedAt = performance.now();
    await backend.defragment(`${path}-defrag`);
    const defragmentMs = performance.now() - startedAt;
    clearInterval(ticker);
    const result = {
      records,
      fileBytesBefore,
      inUseBytesBefore,
      fileBytesAfter: backend.sizeBytes(),
      defragmentMs: Math.round(defragmentMs),
      eventLoopStallMs: Math.round(stallMs),
    };
    console.log(JSON.stringify(result));
  } finally {
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
