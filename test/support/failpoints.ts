/**
 * Failpoints in a real tsetcd member, for tests and the chaos command (see
 * actors/shared/failpoints.ts for the points and the term language, gofail's).
 *
 * API:
 *   - `startMemberWithFailpoints(options, initial)`: a tsetcd member (test/support/member.ts) whose
 *     process serves gofail's control endpoint on a free loopback port (GOFAIL_HTTP) and starts
 *     with `initial` set (GOFAIL_FAILPOINTS). Returns the member and that endpoint.
 *   - `failpointEnv(port, initial)`: the same switch as environment variables, for processes a
 *     test starts itself (a Cluster's members, `tsetcd cluster`).
 *   - `setFailpoint(endpoint, name, terms)`: sets a point at runtime in every thread of the process,
 *     e.g. `setFailpoint(fp, 'walBeforeSync', 'sleep(1000)')`, `'panic'`, `'return(EIO)'`, `'pause'`,
 *     `'1*return(EIO)'`, `'50%sleep(10)'`. Throws with the endpoint's answer when refused.
 *   - `clearFailpoint(endpoint, name)`: turns it off (releases a `pause`).
 *   - `listFailpoints(endpoint)`: every point with its terms ('' when unset).
 *   - `failpointNames`: every point the member has.
 * `endpoint` is the control endpoint's port, or its URL ("http://127.0.0.1:PORT").
 * A `panic` ends the member's process with exit code 2 (Member.waitForExit() tells).
 */
import { failpointNames, type FailpointName } from '../../actors/shared/failpoint-names.js';
import { Member, type MemberOptions } from './member.js';
import { freePort, loopbackHost } from './ports.js';

export { failpointNames, type FailpointName };

/** Where a process's failpoints are controlled: a port on the loopback, or the endpoint's URL. */
export type FailpointEndpoint = number | string;

/** How long one control request may take. */
const controlRequestMs = 5_000;

/** The environment that turns failpoints on in a tsetcd process, with `initial` set at start. */
export function failpointEnv(
  port: number,
  initial: Partial<Record<FailpointName, string>> = {},
): Record<string, string> {
  const list = Object.entries(initial)
    .map(([name, terms]) => `${name}=${terms}`)
    .join(';');
  return { GOFAIL_HTTP: `${loopbackHost}:${port}`, GOFAIL_FAILPOINTS: list };
}

/** A tsetcd member started with failpoints on, and its control endpoint's URL. */
export async function startMemberWithFailpoints(
  options: MemberOptions,
  initial: Partial<Record<FailpointName, string>> = {},
): Promise<{ member: Member; endpoint: string }> {
  const port = await freePort();
  const member = await Member.start({ ...options, env: { ...options.env, ...failpointEnv(port, initial) } });
  return { member, endpoint: endpointUrl(port) };
}

/** Sets `name` to `terms` in the process behind `endpoint`. */
export async function setFailpoint(endpoint: FailpointEndpoint, name: FailpointName, terms: string): Promise<void> {
  await control(endpoint, 'PUT', name, terms);
}

/** Clears `name` in the process behind `endpoint`. */
export async function clearFailpoint(endpoint: FailpointEndpoint, name: FailpointName): Promise<void> {
  await control(endpoint, 'DELETE', name);
}

/** Every failpoint of the process behind `endpoint`, with its terms ('' when unset). */
export async function listFailpoints(endpoint: FailpointEndpoint): Promise<Record<string, string>> {
  const text = await control(endpoint, 'GET', '');
  const points: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const equals = line.indexOf('=');
    if (equals > 0) points[line.slice(0, equals)] = line.slice(equals + 1);
  }
  return points;
}

function endpointUrl(endpoint: FailpointEndpoint): string {
  return typeof endpoint === 'number' ? `http://${loopbackHost}:${endpoint}` : endpoint.replace(/\/$/, '');
}

async function control(endpoint: FailpointEndpoint, method: string, name: string, body?: string): Promise<string> {
  const response = await fetch(`${endpointUrl(endpoint)}/${name}`, {
    method,
    ...(body === undefined ? {} : { body }),
    signal: AbortSignal.timeout(controlRequestMs),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`failpoint ${method} /${name}: ${response.status} ${text.trim()}`);
  return text;
}
