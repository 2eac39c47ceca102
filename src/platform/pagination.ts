import type { SelectQueryBuilder } from 'kysely';

/** What Pothos' `resolveCursorConnection` asks of a page, with cursors decoded to ids. */
export interface PageQuery {
  readonly afterId?: string | undefined;
  readonly beforeId?: string | undefined;
  readonly limit: number;
  /** Paging backwards (`last`): read in descending order. */
  readonly inverted: boolean;
}

/** Keyset pagination on `id` (UUIDv7, so creation order). Stable under inserts and deletes. */
export function paginate<DB, TB extends keyof DB, O>(
  query: SelectQueryBuilder<DB, TB, O>,
  idColumn: string,
  page: PageQuery,
): SelectQueryBuilder<DB, TB, O> {
  // The column reference is dynamic: kysely cannot type-check a name chosen at run time.
  const column = idColumn as never;
  let q = query;
  if (page.afterId) q = q.where(column, '>', page.afterId as never);
  if (page.beforeId) q = q.where(column, '<', page.beforeId as never);
  return q.orderBy(column, page.inverted ? 'desc' : 'asc').limit(page.limit);
}
