import { test } from 'node:test';
import { WalClient } from '../../actors/wal/client.js';
import { makeEntries, tempDir, testMetadata } from './helpers.js';

/** Each measurement runs this long; the numbers are printed, not asserted. */
const measureMs = 1000;
const entryBytes = 256;

async function measure(appenders: number): Promise<void> {
  const { dir, cleanup } = tempDir();
  const { client } = await WalClient.open(dir, { metadata: testMetadata });
  try {
    let nextIndex = 1;
    const deadline = performance.now() + measureMs;
    const started = performance.now();
    const appender = async (): Promise<void> => {
      while (performance.now() < deadline) {
        const index = nextIndex++;
        await client.append(makeEntries(index, 1, 1, entryBytes), { term: 1, vote: 1n, commit: index });
      }
    };
    await Promise.all(Array.from({ length: appenders }, appender));
    const seconds = (performance.now() - started) / 1000;
    const { syncCount, appendCount } = client.stats();
    const appendsPerSecond = Math.round(appendCount / seconds);
    const syncsPerSecond = Math.round(syncCount / seconds);
    console.log(
      `${appenders} appender(s), ${entryBytes}-byte entries: ${appendsPerSecond} appends/s, ${syncsPerSecond} fsyncs/s, ${(appendCount / syncCount).toFixed(1)} appends per fsync`,
    );
  } finally {
    await client.close();
    cleanup();
  }
}

test('append throughput with one writer awaiting each append is printed', async () => {
  await measure(1);
});

test('append throughput with 64 concurrent appenders is printed', async () => {
  await measure(64);
});
