import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { purgeSnapFiles, saveSnapFile, snapFileName } from '../../src/snap/snap-file.js';

const confState = { voters: [1n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };

test('--max-snapshots keeps the newest snap files and 0 keeps them all, as etcd purges them', () => {
  for (const [keep, expected] of [
    [3, [50, 60, 70]],
    [0, [10, 20, 30, 40, 50, 60, 70]],
  ] as const) {
    const dir = mkdtempSync(join(tmpdir(), 'tsetcd-snap-'));
    try {
      for (let index = 10; index <= 70; index += 10) {
        saveSnapFile(dir, { data: Uint8Array.of(1), metadata: { index, term: 2, confState } });
      }
      purgeSnapFiles(dir, keep);
      assert.deepEqual(
        readdirSync(dir).sort(),
        expected.map((index) => snapFileName(2, index)),
        `--max-snapshots ${keep}`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});
