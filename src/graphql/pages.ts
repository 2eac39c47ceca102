import { resolveCursorConnection, type PageInfoShape, type ResolveCursorConnectionArgs } from '@pothos/plugin-relay';
import { ValidationError } from '../platform/errors.js';
import type { PageQuery } from '../platform/pagination.js';

export const MAX_PAGE_SIZE = 100;
export const DEFAULT_PAGE_SIZE = 20;

interface ConnectionArgs {
  first?: number | null;
  last?: number | null;
  after?: string | null;
  before?: string | null;
}

const toCursor = (id: string) => Buffer.from(`cursor:${id}`).toString('base64');

function fromCursor(cursor: string | undefined, field: string): string | undefined {
  if (cursor === undefined) return undefined;
  const text = Buffer.from(cursor, 'base64').toString('utf8');
  if (!text.startsWith('cursor:')) throw ValidationError.of([field], 'is not a cursor returned by this API');
  return text.slice('cursor:'.length);
}

/** Resolves a Relay connection over rows keyed by `id` (UUIDv7, creation order). */
export interface Page<T> {
  readonly pageInfo: PageInfoShape;
  readonly edges: readonly { readonly cursor: string; readonly node: T }[];
}

export function resolvePage<T extends { id: string }>(
  args: ConnectionArgs,
  load: (page: PageQuery) => Promise<T[]>,
): Promise<Page<T>> {
  for (const key of ['first', 'last'] as const) {
    const value = args[key];
    if (value != null && (value < 0 || value > MAX_PAGE_SIZE)) {
      throw ValidationError.of([key], `must be between 0 and ${MAX_PAGE_SIZE}`);
    }
  }
  const sized = args.first == null && args.last == null ? { ...args, first: DEFAULT_PAGE_SIZE } : args;
  return resolveCursorConnection(
    { args: sized, toCursor: (row: T) => toCursor(row.id), defaultSize: DEFAULT_PAGE_SIZE, maxSize: MAX_PAGE_SIZE },
    ({ after, before, limit, inverted }: ResolveCursorConnectionArgs) =>
      load({ afterId: fromCursor(after, 'after'), beforeId: fromCursor(before, 'before'), limit, inverted }),
  ) as Promise<Page<T>>;
}
