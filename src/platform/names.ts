import { ValidationError } from './errors.js';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_IDENTIFIER = 128;
const MAX_LABEL = 200;
// Control characters, and the Unicode format controls that make text read differently
// from what it is (bidi overrides, zero-width joiners).
const UNSAFE = /[\p{Cc}\p{Cf}]/u;

/**
 * Names of streams, connections and pipelines: they appear in Flink SQL and topic
 * names, so they are plain identifiers (letters, digits, underscore).
 */
export function checkIdentifier(path: readonly (string | number)[], value: string): string {
  if (value.length === 0) throw ValidationError.of(path, 'must not be empty');
  if (value.length > MAX_IDENTIFIER) {
    throw ValidationError.of(path, `must be at most ${MAX_IDENTIFIER} characters (got ${value.length})`);
  }
  if (!IDENTIFIER.test(value)) {
    throw ValidationError.of(
      path,
      'must start with a letter or underscore and contain only ASCII letters, digits and underscores',
    );
  }
  return value;
}

/** Display names (accounts, API keys): any printable text, trimmed, bounded. */
export function checkLabel(path: readonly (string | number)[], value: string): string {
  const trimmed = value.trim();
  if (trimmed.length === 0) throw ValidationError.of(path, 'must not be empty');
  if (trimmed.length > MAX_LABEL) {
    throw ValidationError.of(path, `must be at most ${MAX_LABEL} characters (got ${trimmed.length})`);
  }
  if (UNSAFE.test(trimmed)) throw ValidationError.of(path, 'must not contain control or format characters');
  return trimmed;
}
