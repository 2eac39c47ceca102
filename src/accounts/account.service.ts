import type { Db } from '../platform/database.js';
import { ConflictError, NotFoundError, UnauthenticatedError } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import type { Logger } from '../platform/logger.js';
import { checkLabel } from '../platform/names.js';
import type { PageQuery } from '../platform/pagination.js';
import type { RateLimiter } from '../platform/rate-limiter.js';
import { MINUTE } from '../platform/time.js';
import * as repo from './account.repository.js';
import type { AccountRow, ApiKeyRow, Role, Tier, TierRow } from './account.table.js';
import { requireRole, type Actor } from './actor.js';
import type { ApiKeyCodec } from './api-key-codec.js';
import type { KeyRevocations } from './key-revocations.js';

export interface SignUpResult {
  readonly account: AccountRow;
  readonly apiKey: ApiKeyRow;
  /** The key itself: returned once, never stored. */
  readonly secret: string;
}

/** last_used_at is bookkeeping, not an audit log: write it at most once a minute per key. */
const TOUCH_INTERVAL_MS = MINUTE;

export class AccountService {
  constructor(
    private readonly db: Db,
    private readonly codec: ApiKeyCodec,
    private readonly signupLimiter: RateLimiter,
    private readonly revocations: KeyRevocations,
    private readonly logger: Logger,
  ) {}

  /** Creates an account and its first (ADMIN) key in one transaction. No Flink, no Kubernetes. */
  async signUp(input: { name: string }, clientAddress: string): Promise<SignUpResult> {
    const name = checkLabel(['input', 'name'], input.name);
    this.signupLimiter.take(clientAddress);
    const issued = this.codec.issue();
    const accountId = newId();
    const result = await this.db.transaction().execute(async (trx) => {
      const account = await repo.insertAccount(trx, { id: accountId, name, tier: 'FREE' });
      const apiKey = await repo.insertApiKey(trx, {
        id: newId(),
        account_id: accountId,
        name: 'default',
        role: 'ADMIN',
        prefix: issued.prefix,
        key_hash: issued.hash,
      });
      return { account, apiKey };
    });
    this.logger.info({ accountId }, 'account signed up');
    return { ...result, secret: issued.secret };
  }

  /**
   * Resolves a presented key to its actor. Throws UnauthenticatedError for a key that is
   * malformed, unknown or revoked: a caller who sends a key meant to be authenticated.
   */
  async authenticate(presented: string): Promise<Actor> {
    const prefix = this.codec.prefixOf(presented);
    if (!prefix) throw new UnauthenticatedError('The API key is malformed.');
    const candidates = await repo.findLiveKeysByPrefix(this.db, prefix);
    const key = candidates.find((candidate) => this.codec.matches(presented, candidate.key_hash));
    if (!key) throw new UnauthenticatedError('The API key is unknown or revoked.');
    const now = new Date();
    if (!key.last_used_at || now.getTime() - key.last_used_at.getTime() > TOUCH_INTERVAL_MS) {
      await repo.touchApiKey(this.db, key.id, now);
    }
    return { accountId: key.account_id, keyId: key.id, role: key.role, tier: key.tier };
  }

  async viewer(actor: Actor | null): Promise<AccountRow> {
    const a = requireRole(actor, 'VIEWER');
    const account = await repo.findAccount(this.db, a.accountId);
    if (!account) throw new UnauthenticatedError('The account of this API key no longer exists.');
    return account;
  }

  async tierLimits(tier: Tier): Promise<TierRow> {
    return repo.findTier(this.db, tier);
  }

  async createApiKey(actor: Actor | null, input: { name: string; role: Role }) {
    const a = requireRole(actor, 'ADMIN');
    const name = checkLabel(['input', 'name'], input.name);
    const issued = this.codec.issue();
    const apiKey = await repo.insertApiKey(this.db, {
      id: newId(),
      account_id: a.accountId,
      name,
      role: input.role,
      prefix: issued.prefix,
      key_hash: issued.hash,
    });
    this.logger.info({ accountId: a.accountId, keyId: apiKey.id }, 'api key created');
    return { apiKey, secret: issued.secret };
  }

  async listApiKeys(actor: Actor | null, page: PageQuery): Promise<ApiKeyRow[]> {
    const a = requireRole(actor, 'ADMIN');
    return repo.listApiKeys(this.db, a.accountId, page);
  }

  async getApiKey(actor: Actor | null, id: string): Promise<ApiKeyRow> {
    const a = requireRole(actor, 'ADMIN');
    const key = await repo.findApiKey(this.db, a.accountId, id);
    if (!key) throw new NotFoundError('ApiKey', id);
    return key;
  }

  /** Takes effect on the next request; open subscriptions of the key are closed now. */
  async revokeApiKey(actor: Actor | null, id: string): Promise<ApiKeyRow> {
    const a = requireRole(actor, 'ADMIN');
    const revoked = await this.db.transaction().execute(async (trx) => {
      const key = await repo.findApiKey(trx, a.accountId, id);
      if (!key) throw new NotFoundError('ApiKey', id);
      if (key.revoked_at) throw new ConflictError('This API key is already revoked.');
      if (key.role === 'ADMIN' && (await repo.countLiveAdminKeys(trx, a.accountId)) <= 1) {
        throw new ConflictError('This is the last ADMIN key of the account; create another ADMIN key first.');
      }
      return repo.revokeApiKey(trx, a.accountId, id, new Date());
    });
    if (!revoked) throw new NotFoundError('ApiKey', id);
    this.revocations.revoked(id);
    this.logger.info({ accountId: a.accountId, keyId: id }, 'api key revoked');
    return revoked;
  }
}
