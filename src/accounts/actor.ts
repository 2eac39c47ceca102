import { ForbiddenError, UnauthenticatedError } from '../platform/errors.js';
import type { Role, Tier } from './account.table.js';

/** Who is calling: the account and role of a valid API key. */
export interface Actor {
  readonly accountId: string;
  readonly keyId: string;
  readonly role: Role;
  readonly tier: Tier;
}

const RANK: Record<Role, number> = { VIEWER: 0, MEMBER: 1, ADMIN: 2 };

/**
 * Roles are ordered: ADMIN can do what MEMBER can, MEMBER what VIEWER can.
 * VIEWER reads, MEMBER changes streams, connections and pipelines, ADMIN manages keys.
 */
export function requireRole(actor: Actor | null, role: Role): Actor {
  if (!actor) throw new UnauthenticatedError();
  if (RANK[actor.role] < RANK[role]) throw new ForbiddenError(role);
  return actor;
}
