/** Every XState machine a member runs, by its id: what `tsetcd machines --export` writes. */
import { memberLifecycleMachine } from './member-lifecycle.js';
import { raftRoleMachine } from './raft-role.js';

export const machineCatalog = [raftRoleMachine, memberLifecycleMachine] as const;
