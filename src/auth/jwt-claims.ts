/**
 * The time claims of a JWT as etcd 3.4 checks them (jwt-go's MapClaims.Valid): "exp", "iat" and
 * "nbf" are optional; a number is cut to whole seconds and compared with the current second, a
 * token is good through the second its "exp" names (exp == now is accepted), and one issued or
 * valid only from a later second is refused. A claim that is absent, zero or not a number is no
 * check at all.
 */

/** Whether `claims` is valid at `nowSeconds` (whole seconds since the epoch). */
export function jwtTimeClaimsValid(claims: Readonly<Record<string, unknown>>, nowSeconds: number): boolean {
  if (!Number.isInteger(nowSeconds)) throw new Error(`expected whole seconds, saw ${nowSeconds}`);
  const exp = wholeSeconds(claims.exp);
  const iat = wholeSeconds(claims.iat);
  const nbf = wholeSeconds(claims.nbf);
  return (exp === 0 || nowSeconds <= exp) && (iat === 0 || nowSeconds >= iat) && (nbf === 0 || nowSeconds >= nbf);
}

/** A claim's seconds as Go's int64(float64) conversion gives them; 0 (no check) for anything else. */
function wholeSeconds(claim: unknown): number {
  return typeof claim === 'number' && Number.isFinite(claim) ? Math.trunc(claim) : 0;
}
