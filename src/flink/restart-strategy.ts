/**
 * How Flink restarts a failing job inside its application cluster, in both runtimes: with
 * a growing delay (1 s, 2 s, 4 s, … at most 30 s), six times, so that a job rides out an
 * outage of about a minute of the systems it reads and writes (a database restarting, a
 * broker failing over). After that the job ends FAILED with Flink's message instead of
 * restarting forever. A dead process is the reconciler's to restart, a dead pod the
 * operator's. Ten minutes without a failure start the count again.
 */
export const JOB_RESTART_STRATEGY: Readonly<Record<string, string>> = Object.freeze({
  'restart-strategy.type': 'exponential-delay',
  'restart-strategy.exponential-delay.initial-backoff': '1 s',
  'restart-strategy.exponential-delay.backoff-multiplier': '2.0',
  'restart-strategy.exponential-delay.max-backoff': '30 s',
  'restart-strategy.exponential-delay.attempts-before-reset-backoff': '6',
  'restart-strategy.exponential-delay.reset-backoff-threshold': '10 min',
  'restart-strategy.exponential-delay.jitter-factor': '0.1',
});
