import { pino, type Logger } from 'pino';

export type { Logger };

/** The root logger. Secrets never reach it: redaction is the last line of defence, not the first. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'weir' },
    redact: {
      paths: ['*.authorization', '*.headers.authorization', '*.secret', '*.secretProperties', '*.password'],
      censor: '[redacted]',
    },
  });
}
