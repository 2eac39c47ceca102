import { NotFoundError } from '../platform/errors.js';
import { globalId, isUuid } from '../platform/ids.js';

/** Relay global ids: base64 of `Type:uuid`. */
export const encodeId = globalId;

export function decodeAnyId(globalId: string): { type: string; id: string } | undefined {
  const text = Buffer.from(globalId, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon <= 0) return undefined;
  const type = text.slice(0, colon);
  const id = text.slice(colon + 1);
  return isUuid(id) && encodeId(type, id) === globalId ? { type, id } : undefined;
}

/**
 * The uuid of a global id of the expected type. A malformed id, or one of another type,
 * is NOT_FOUND: the same answer as for an id that never existed.
 */
export function decodeId(globalId: string, type: string): string {
  const decoded = decodeAnyId(globalId);
  if (!decoded || decoded.type !== type) throw new NotFoundError(type, globalId);
  return decoded.id;
}
