/**
 * Whether a member's machines are inspected at all. Without --inspect-url nothing is loaded or
 * started: the machines are created with no inspect callback, so no inspection event is built
 * for them and nothing is serialised.
 */
import type { MemberConfig } from '../../src/config/config.js';
import type { Logger } from '../shared/logger.js';
import type { MemberInspection } from './stream.js';

/** Starts the member's inspection stream when --inspect-url asks for one; undefined otherwise. */
export async function startInspectionIfAsked(
  config: Pick<MemberConfig, 'name' | 'inspectUrl' | 'inspectAllEvents'>,
  logger: Logger,
): Promise<MemberInspection | undefined> {
  if (config.inspectUrl === '') return undefined;
  const { startMemberInspection } = await import('./stream.js');
  return startMemberInspection(config.name, config.inspectUrl, config.inspectAllEvents, logger);
}
