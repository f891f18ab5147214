/** Checks shared by the fault tests: every put a client saw acknowledged is served after a restart. */
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import type { Member } from './member.js';

/** Fails naming how many of `acknowledged` (key -> value) the member does not serve with that value. */
export async function assertAllPresent(member: Member, acknowledged: ReadonlyMap<string, string>): Promise<void> {
  const client = new Etcd3({ hosts: member.clientUrl });
  try {
    const stored = await client.getAll().strings();
    const missing = [...acknowledged].filter(([key, value]) => stored[key] !== value).map(([key]) => key);
    assert.deepEqual(
      missing,
      [],
      `${missing.length} of ${acknowledged.size} acknowledged puts are missing after restart`,
    );
  } finally {
    client.close();
  }
}
