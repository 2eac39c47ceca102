import type { Actor } from '../accounts/actor.js';
import type { Deadline } from '../platform/deadline.js';
import type { Logger } from '../platform/logger.js';
import type { Services } from '../services.js';
import type { Loaders } from './loaders.js';

/** What every resolver gets. Resolvers call services; they hold no rules of their own. */
export interface GraphQLContext {
  readonly requestId: string;
  /** Scoped to the request (and the account once authenticated). */
  readonly logger: Logger;
  readonly services: Services;
  /** null: no API key was sent (only public fields such as signUp work). */
  readonly actor: Actor | null;
  readonly clientAddress: string;
  /** Started when a query or mutation executes (useRequestDeadline); its signal says when to stop. */
  readonly deadline: Deadline;
  /** Per-request batch loaders for relation fields. */
  readonly loaders: Loaders;
}
