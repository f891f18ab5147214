/** Shared fixtures for the WAL tests: temporary directories and generated entries. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Entry } from '../../src/raft/types.js';

export const testMetadata = { memberId: 0x8e9e05c52164694dn, clusterId: 0xcdf818194e3a8c32n };

/** A fresh directory removed by the returned cleanup. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'tsetcd-wal-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `count` normal entries from `firstIndex` in `term`, each with `dataBytes` of recognisable data. */
export function makeEntries(firstIndex: number, count: number, term = 1, dataBytes = 16): Entry[] {
  return Array.from({ length: count }, (_, i) => {
    const index = firstIndex + i;
    const data = new Uint8Array(dataBytes);
    for (let b = 0; b < dataBytes; b++) data[b] = (index * 7 + term * 13 + b) & 0xff;
    return { term, index, type: 0, data };
  });
}
