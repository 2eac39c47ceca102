import type { ActualState } from '../jobs/job.table.js';
import { MINUTE, SECOND } from '../platform/time.js';

/**
 * When a job that keeps dying is restarted, and when it is given up on. Pure: the
 * reconciler reads the job's history, asks here, and acts on the answer.
 */
export interface RestartPolicy {
  /** Restarts allowed within `windowMs`; one more ends the job FAILED. */
  readonly maxRestarts: number;
  readonly windowMs: number;
  /** Delay before the second restart in the window; it doubles up to `maxBackoffMs`. */
  readonly minBackoffMs: number;
  readonly maxBackoffMs: number;
}

/**
 * A job that runs out of heap on every start dies about every 2 minutes on the local
 * runtime (its JVM starts, thrashes in GC, goes silent, is killed after
 * WEIR_JOB_UNRESPONSIVE_MS): 30 minutes holds six such deaths with room to spare.
 */
export const DEFAULT_RESTART_POLICY: RestartPolicy = Object.freeze({
  maxRestarts: 5,
  windowMs: 30 * MINUTE,
  minBackoffMs: SECOND,
  maxBackoffMs: 60 * SECOND,
});

/** A recorded transition, as much of it as the policy reads. */
export interface SeenTransition {
  readonly state: ActualState;
  readonly reason: string | null;
}

// The reconciler's own RECOVERING reasons. Only these texts are parsed back from history.
const RESTART_PREFIX = 'The job stopped unexpectedly; restart ';
export const REDEPLOY_REASON = 'Redeploying a changed spec.';
export const HALF_MADE_REASON = 'Completing a half-made deployment.';
/** A gateway that stops takes the local runtime's job processes with it: not a death. */
export const RESUME_REASON = 'The gateway restarted; starting the job again from its latest checkpoint.';
const DELIBERATE: ReadonlySet<string | null> = new Set([REDEPLOY_REASON, HALF_MADE_REASON, RESUME_REASON]);

/** The RECOVERING reason the reconciler records when it restarts a job itself. */
export function restartReason(attempt: number, policy: RestartPolicy, delayMs: number): string {
  const when = delayMs > 0 ? `in ${formatDuration(delayMs)}` : 'now';
  return `${RESTART_PREFIX}${attempt} of ${policy.maxRestarts} allowed in ${formatDuration(policy.windowMs)}, ${when}, from its latest checkpoint.`;
}

const isOwnRestart = (t: SeenTransition) => t.state === 'RECOVERING' && !!t.reason?.startsWith(RESTART_PREFIX);

export interface RestartCount {
  readonly restarts: number;
  /** What the runtime last said went wrong (Flink's root exception, a hung process), if anything. */
  readonly lastCause: string | null;
}

/**
 * Counts restarts in a job's transitions (oldest first, those of the window since its
 * last change). A restart is a RECOVERING transition: one the reconciler made itself, or
 * one the runtime reported (Flink's own restart, a hung process killed). The reconciler's
 * restart that follows the runtime's report of the same death is not counted again, nor
 * are deliberate redeploys and resumes after a gateway restart.
 */
export function countRestarts(transitions: readonly SeenTransition[]): RestartCount {
  let restarts = 0;
  let lastCause: string | null = null;
  let previous: SeenTransition | undefined;
  for (const t of transitions) {
    if (t.state === 'RECOVERING' && !DELIBERATE.has(t.reason)) {
      const sameDeath = previous !== undefined && isRuntimeRestart(previous.state, previous.reason);
      if (!sameDeath) restarts += 1;
      if (!isOwnRestart(t) && t.reason) lastCause = t.reason;
    }
    previous = t;
  }
  return { restarts, lastCause };
}

export type RestartDecision =
  | { readonly action: 'restart'; readonly attempt: number; readonly delayMs: number }
  | { readonly action: 'give-up'; readonly reason: string };

/**
 * A job died (it is gone from the runtime): restart it after a backoff, or give up when
 * it already restarted `maxRestarts` times in the window. `counted`: the runtime already
 * reported this death as a restart (a hung process it found), so it is in `count`.
 * `jitter` in [0, 1) spreads restarts of jobs that died together.
 */
export function decideRestart(count: RestartCount, policy: RestartPolicy, jitter: number, counted = false): RestartDecision {
  const attempt = count.restarts + (counted ? 0 : 1);
  if (attempt > policy.maxRestarts) return { action: 'give-up', reason: gaveUpReason(attempt - 1, count.lastCause, policy) };
  return { action: 'restart', attempt, delayMs: backoffMs(attempt, policy, jitter) };
}

/** The runtime restarts the job itself (Flink's restart strategy): past the budget, it is stopped. */
export function overBudget(count: RestartCount, policy: RestartPolicy): string | undefined {
  return count.restarts > policy.maxRestarts ? gaveUpReason(count.restarts - 1, count.lastCause, policy) : undefined;
}

/** A RECOVERING the runtime reported (not one the reconciler recorded for its own restart). */
export function isRuntimeRestart(state: ActualState, reason: string | null): boolean {
  return state === 'RECOVERING' && !isOwnRestart({ state, reason }) && !DELIBERATE.has(reason);
}

/**
 * A first death restarts at once (a crash once in a while costs no wait); each further
 * one in the window waits twice as long, from `minBackoffMs` to `maxBackoffMs`, jittered
 * into its upper half.
 */
export function backoffMs(attempt: number, policy: RestartPolicy, jitter: number): number {
  if (attempt <= 1) return 0;
  const full = Math.min(policy.maxBackoffMs, policy.minBackoffMs * 2 ** (attempt - 2));
  return Math.round(full / 2 + (full / 2) * jitter);
}

function gaveUpReason(restarts: number, lastCause: string | null, policy: RestartPolicy): string {
  const cause = lastCause ?? 'the job process exited without saying why (killed, or out of memory)';
  return `Restarted ${restarts} times in ${formatDuration(policy.windowMs)}; last cause: ${cause.replace(/\.?$/, '.')} Weir stopped restarting it: change its spec, or deactivate and activate it, to try again.`;
}

function formatDuration(ms: number): string {
  if (ms % MINUTE === 0) return ms === MINUTE ? '1 minute' : `${ms / MINUTE} minutes`;
  if (ms % SECOND === 0) return `${ms / SECOND} s`;
  return `${(ms / SECOND).toFixed(1)} s`;
}
