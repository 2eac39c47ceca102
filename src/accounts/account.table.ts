import type { ColumnType, Generated, Selectable } from 'kysely';

export type Tier = 'FREE' | 'PAID';
export type Role = 'ADMIN' | 'MEMBER' | 'VIEWER';

export interface TierTable {
  name: Tier;
  max_active_jobs: number;
  max_task_count: number;
  max_concurrent_previews: number;
  max_streams: number;
  max_pipelines: number;
  max_connections: number;
  /** Open subscriptions (WebSocket and SSE together) of one API key. */
  max_subscriptions_per_key: number;
  /** Open subscriptions of all the account's keys together. */
  max_subscriptions_per_account: number;
}

export interface AccountTable {
  id: string;
  name: string;
  tier: Tier;
  created_at: ColumnType<Date, never, never>;
}

export interface ApiKeyTable {
  id: string;
  account_id: string;
  name: string;
  role: Role;
  prefix: string;
  key_hash: Buffer;
  created_at: ColumnType<Date, never, never>;
  last_used_at: ColumnType<Date | null, never, Date>;
  revoked_at: ColumnType<Date | null, never, Date>;
}

export type TierRow = Selectable<TierTable>;
export type AccountRow = Selectable<AccountTable>;
export type ApiKeyRow = Selectable<ApiKeyTable>;
export type { Generated };
