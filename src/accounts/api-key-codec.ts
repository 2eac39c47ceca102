import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const KEY_PREFIX = 'weir_';
/** 32 random bytes: 256 bits of entropy. */
const KEY_BYTES = 32;
/** Characters kept in clear to find a key and to show which key it is. */
export const PREFIX_LENGTH = KEY_PREFIX.length + 8;

export interface IssuedKey {
  /** The key itself, shown to the user once and never stored. */
  readonly secret: string;
  readonly prefix: string;
  readonly hash: Buffer;
}

/** API keys: random, stored only as HMAC-SHA256 under the server secret. */
export class ApiKeyCodec {
  constructor(private readonly serverSecret: string) {}

  issue(): IssuedKey {
    const secret = KEY_PREFIX + randomBytes(KEY_BYTES).toString('base64url');
    return { secret, prefix: secret.slice(0, PREFIX_LENGTH), hash: this.hash(secret) };
  }

  hash(secret: string): Buffer {
    return createHmac('sha256', this.serverSecret).update(secret).digest();
  }

  /** The lookup prefix of a presented key, or undefined when it cannot be a Weir key. */
  prefixOf(presented: string): string | undefined {
    if (!presented.startsWith(KEY_PREFIX) || presented.length < PREFIX_LENGTH + 16 || presented.length > 128) {
      return undefined;
    }
    return presented.slice(0, PREFIX_LENGTH);
  }

  matches(presented: string, storedHash: Buffer): boolean {
    const hash = this.hash(presented);
    return hash.length === storedHash.length && timingSafeEqual(hash, storedHash);
  }
}
