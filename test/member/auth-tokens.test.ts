/**
 * The member's JWT provider checks the time claims by etcd 3.4's rule, on the clock it is given:
 * a token stays good through the second its exp names (jose alone refuses it in that second).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createTokenProvider } from '../../actors/member/auth-tokens.js';

test('a JWT is accepted through the second of its exp and refused from the next second', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsetcd-jwt-'));
  try {
    const keyPath = join(dir, 'hmac.key');
    writeFileSync(keyPath, 'a shared secret of the test');
    let clockMs = 1_700_000_000_250;
    const ttlMs = 5_000;
    const provider = createTokenProvider(
      {
        authToken: { type: 'jwt', signMethod: 'HS256', publicKeyPath: '', privateKeyPath: keyPath, ttlMs },
        authTokenTtlSeconds: 300,
      },
      () => clockMs,
    );
    const token = await provider.issue('alice', 7, '');
    const expSeconds = Math.floor((clockMs + ttlMs) / 1_000);
    clockMs = expSeconds * 1_000 + 999;
    assert.deepEqual(await provider.info(token, 7), { username: 'alice', revision: 7 });
    clockMs = (expSeconds + 1) * 1_000;
    assert.equal(await provider.info(token, 7), undefined);
    provider.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
