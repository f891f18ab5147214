/**
 * Applies --auth-bootstrap-file once, when a new cluster starts: the member that is leader once
 * one is elected proposes the file's steps as the Auth RPCs would (passwords hashed in the
 * password pool first), unless the auth store has already changed (another leader began). A
 * restarted member or one joining an existing cluster never applies it; give every initial member
 * the same file, since only the first leader acts on it.
 */
import type { MemberConfig } from '../../src/config/config.js';
import type { BootstrapStep } from '../../src/auth/bootstrap-file.js';
import { authBootstrapLeaderWaitMsMax } from '../../src/lib/limits.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AuthFront } from './auth-api.js';
import type { Logger } from '../shared/logger.js';
import { EtcdError, errors } from '../../src/api/errors.js';

export interface AuthBootstrapParts {
  config: Pick<MemberConfig, 'authBootstrapFile' | 'heartbeatIntervalMs'>;
  auth: Pick<AuthFront, 'request' | 'userAdd'>;
  /** Whether the auth store is still as a new cluster's is (no change applied yet). */
  authUntouched: () => boolean;
  /** The leader's ID as this member knows it (0n while none), and this member's. */
  leaderId: () => bigint;
  memberId: bigint;
  readBarrier: () => Promise<void>;
  stopRequested: () => boolean;
  logger: Logger;
}

async function applyStep(auth: AuthBootstrapParts['auth'], step: BootstrapStep): Promise<void> {
  switch (step.kind) {
    case 'roleAdd':
      await auth.request({ method: 'roleAdd', name: step.name }, undefined);
      return;
    case 'roleGrantPermission':
      await auth.request({ method: 'roleGrantPermission', name: step.name, perm: step.perm }, undefined);
      return;
    case 'userAdd':
      await auth.userAdd(step.name, step.password, step.noPassword, undefined);
      return;
    case 'userGrantRole':
      await auth.request({ method: 'userGrantRole', user: step.user, role: step.role }, undefined);
      return;
    case 'authEnable':
      await auth.request({ method: 'authEnable' }, undefined);
      return;
  }
}

/** Waits for a leader; true when it is this member. */
async function electedHere(parts: AuthBootstrapParts): Promise<boolean> {
  const pauseMs = Math.max(1, parts.config.heartbeatIntervalMs);
  for (let waitedMs = 0; waitedMs < authBootstrapLeaderWaitMsMax; waitedMs += pauseMs) {
    if (parts.stopRequested()) return false;
    const leader = parts.leaderId();
    if (leader !== 0n) return leader === parts.memberId;
    await sleep(pauseMs, undefined, { ref: false });
  }
  parts.logger.warn({ file: parts.config.authBootstrapFile }, 'no leader elected; auth bootstrap file not applied');
  return false;
}

/** Times the leader tries its read barrier again after "leader changed" before it gives up. */
const readBarrierTriesMax = 20;

/**
 * Waits for a leader and, when it is this member, for a read barrier, so the check that the auth
 * store is untouched sees everything committed. A barrier asked for as the member was just
 * elected can fail with "leader changed" (reads pending across the change are dropped, and
 * clients retry them): then it waits for the leader again and retries, a bounded number of times.
 */
async function leadsAfterReadBarrier(parts: AuthBootstrapParts): Promise<boolean> {
  for (let tries = 1; ; tries++) {
    if (!(await electedHere(parts))) return false;
    try {
      await parts.readBarrier();
      return true;
    } catch (error) {
      const leaderChanged = error instanceof EtcdError && error.message === errors.leaderChanged().message;
      if (!leaderChanged || tries >= readBarrierTriesMax) throw error;
      await sleep(Math.max(1, parts.config.heartbeatIntervalMs), undefined, { ref: false });
    }
  }
}

/** Applies the file's steps if this member leads the new cluster; errors are logged, never thrown. */
export async function applyAuthBootstrap(parts: AuthBootstrapParts): Promise<void> {
  const file = parts.config.authBootstrapFile;
  try {
    // Read again: it was checked when the flags were, and the member thread holds only the path.
    // The config module (and its schema validator) loads only here, for members that have a file.
    const { authBootstrapSteps } = await import('../../src/config/config.js');
    const steps = authBootstrapSteps(file);
    if (!(await leadsAfterReadBarrier(parts))) return;
    if (!parts.authUntouched()) {
      parts.logger.info({ file }, 'auth store already changed; auth bootstrap file not applied');
      return;
    }
    for (const step of steps) await applyStep(parts.auth, step);
    parts.logger.info({ file, steps: steps.length }, 'applied auth bootstrap file');
  } catch (error) {
    parts.logger.error(
      { file, error: error instanceof Error ? error.message : String(error) },
      'failed to apply auth bootstrap file',
    );
  }
}
