import { ConflictError } from './errors.js';

/** Whether a database error is a unique-constraint violation (SQLSTATE 23505), from pg or PGlite. */
function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === '23505';
}

/**
 * Runs a write that gives an object its name (a create, or an update that renames): the
 * database's unique (account, name) index answers a taken name, and the API says so as
 * CONFLICT on `input.name`.
 */
export async function withUniqueName<T>(what: string, name: string | undefined, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (isUniqueViolation(error)) throw new ConflictError(`A ${what} named "${name}" already exists.`, { field: ['input', 'name'] });
    throw error;
  }
}
