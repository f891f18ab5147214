/** A JWT's time claims as etcd 3.4 (jwt-go's MapClaims.Valid) takes them. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jwtTimeClaimsValid } from '../../src/auth/jwt-claims.js';

const now = 1_700_000_000;

test('a token is good through the second its exp names, and refused from the next one', () => {
  assert.equal(jwtTimeClaimsValid({ exp: now + 1 }, now), true);
  assert.equal(jwtTimeClaimsValid({ exp: now }, now), true);
  assert.equal(jwtTimeClaimsValid({ exp: now - 1 }, now), false);
});

test('a fractional exp is cut to whole seconds, as Go converts a float64 to int64', () => {
  assert.equal(jwtTimeClaimsValid({ exp: now + 0.9 }, now), true);
  assert.equal(jwtTimeClaimsValid({ exp: now + 0.9 }, now + 1), false);
});

test('a token issued, or valid only from, a later second is refused; from this second it is taken', () => {
  assert.equal(jwtTimeClaimsValid({ iat: now + 1 }, now), false);
  assert.equal(jwtTimeClaimsValid({ iat: now }, now), true);
  assert.equal(jwtTimeClaimsValid({ nbf: now + 1 }, now), false);
  assert.equal(jwtTimeClaimsValid({ nbf: now }, now), true);
});

test('absent, zero or non-numeric time claims are no check', () => {
  assert.equal(jwtTimeClaimsValid({}, now), true);
  assert.equal(jwtTimeClaimsValid({ exp: 0, iat: 0, nbf: 0 }, now), true);
  assert.equal(jwtTimeClaimsValid({ exp: 'yesterday', nbf: 'tomorrow' }, now), true);
});
