import type { JobStateRow } from '../jobs/job.repository.js';
import type { ActualState } from '../jobs/job.table.js';
import type { ObservedJob } from '../runtime/runtime.js';
import {
  countRestarts,
  decideRestart,
  HALF_MADE_REASON,
  isRuntimeRestart,
  overBudget,
  REDEPLOY_REASON,
  restartReason,
  RESUME_REASON,
  type RestartPolicy,
  type SeenTransition,
} from './restart-policy.js';

/** What the reconciler remembers of a job from its earlier passes (a new gateway knows none of it). */
export interface Remembered {
  /** The spec version held FAILED (rejected by the runtime, or given up on): not retried. */
  readonly heldVersion: number | undefined;
  /** A restart of a job that died, waiting out its backoff. */
  readonly restart: { readonly specVersion: number; readonly dueAt: number } | undefined;
  /** This is the gateway's first pass: a job it finds gone was stopped with the previous gateway. */
  readonly firstPass: boolean;
}

/** Everything one job's decision depends on. */
export interface DecideInput {
  /** The job's row, as this pass read it. */
  readonly job: Pick<JobStateRow, 'desired_state' | 'spec_version' | 'actual_state' | 'actual_reason'>;
  /** What the runtime holds of the job; undefined when it holds nothing. */
  readonly observed: Pick<ObservedJob, 'specVersion' | 'phase' | 'reason' | 'hung'> | undefined;
  readonly remembered: Remembered;
  /**
   * The job's transitions since its last change, within the restart window, oldest first.
   * Read only when decide asks for them (verdict `read-history`): when a restart is counted.
   */
  readonly history?: readonly SeenTransition[] | undefined;
  readonly policy: RestartPolicy;
  readonly now: number;
  /** Jitter of a backoff, in [0, 1). */
  readonly jitter: number;
}

/** One thing the reconciler does for a job; an action is a few of them, in order. */
export type Step =
  /** Records an actual state (only ever one that changes what the row says). */
  | { readonly do: 'record'; readonly state: ActualState; readonly reason: string | null }
  /** Deploys the job's spec, read fresh; a job deleted meanwhile ends the action here. */
  | { readonly do: 'apply' }
  /**
   * The runtime lets go of the job (stops it, frees what it held). With `savepoint` (a
   * deactivation) it stops with a savepoint; when it could not take one, the record that
   * follows, saying nothing itself, carries why.
   */
  | { readonly do: 'remove'; readonly savepoint?: true }
  /** Remembers a restart of this spec version, due at `dueAt`. */
  | { readonly do: 'schedule-restart'; readonly dueAt: number }
  | { readonly do: 'clear-restart' }
  /** Holds this spec version FAILED: no pass retries it. */
  | { readonly do: 'hold' }
  /** Forgets the job's held version and restart (deactivated: a later activation starts afresh). */
  | { readonly do: 'forget' };

/** What decide made of the job, in a word. */
export type Verdict =
  /** More is needed to decide: the job's restart history (call again with `history`). */
  | 'read-history'
  /** The runtime shows what the row says: nothing to do. */
  | 'in-sync'
  /** The runtime cannot tell the job's state right now (its process did not answer): wait. */
  | 'unknown'
  /** The runtime shows a new state: record it. */
  | 'follow'
  /** The runtime restarts the job itself (Flink's restart strategy): record it, a restart counted. */
  | 'runtime-restart'
  /** The runtime found the job's process hung: record it and remove the job, to start it again. */
  | 'hung'
  /** Too many restarts in the window: remove the job, FAILED, held. */
  | 'give-up'
  /** The job died (gone, nobody stopped it): record its restart, applied when its backoff ends. */
  | 'died'
  /** Gone on a new gateway's first pass (stopped with the previous one): started again, not counted. */
  | 'resume'
  /** A restart waits out its backoff. */
  | 'backoff'
  /** A restart's backoff is over: apply the job again. */
  | 'restart'
  /** Held FAILED at this spec version: nothing until the spec changes or the job is activated again. */
  | 'held'
  /** Not in the runtime: deploy it. */
  | 'deploy'
  /** In the runtime at another spec version: deploy this one. */
  | 'redeploy'
  /** In the runtime at version 0 (an apply stopped partway): finish it. */
  | 'half-made'
  /** Deactivated, still in the runtime: remove it. */
  | 'stop'
  /** Deactivated and gone from the runtime: record that. */
  | 'stopped';

export interface Action {
  readonly verdict: Verdict;
  readonly steps: readonly Step[];
  /** What the reconciler logs about it, if anything. */
  readonly log?: { readonly level: 'info' | 'warn'; readonly message: string; readonly fields?: Record<string, unknown> };
}

/** States of a job that the runtime should be holding: one absent in them died. */
const UP: ReadonlySet<ActualState> = new Set(['STARTING', 'RUNNING', 'RECOVERING']);

const READ_HISTORY: Action = { verdict: 'read-history', steps: [] };
const APPLY: Step = { do: 'apply' };
const REMOVE: Step = { do: 'remove' };
const CLEAR_RESTART: Step = { do: 'clear-restart' };

/** Steps under way; a record is only added when it changes what the row says by then. */
class Steps {
  readonly list: Step[] = [];
  private state: ActualState;
  private reason: string | null;

  constructor(job: DecideInput['job']) {
    this.state = job.actual_state;
    this.reason = job.actual_reason;
  }

  record(state: ActualState, reason: string | null): this {
    if (state === this.state && reason === this.reason) return this;
    this.state = state;
    this.reason = reason;
    this.list.push({ do: 'record', state, reason });
    return this;
  }

  then(...steps: Step[]): this {
    this.list.push(...steps);
    return this;
  }
}

/**
 * What to do about one job: level-triggered, from what the database wants, what the
 * runtime holds and what earlier passes left to remember. Pure: the reconciler reads,
 * asks here, and carries out the steps (see Reconciler).
 */
export function decide(input: DecideInput): Action {
  const { job, observed } = input;
  if (job.desired_state === 'INACTIVE') return stop(input);
  if (observed && observed.specVersion === job.spec_version) return follow(input, observed);
  return (!observed && absent(input)) || deploy(input);
}

/** Deactivated: the runtime lets go of it. */
function stop({ job, observed }: DecideInput): Action {
  const steps = new Steps(job).then({ do: 'forget' });
  if (observed) steps.record('STOPPING', null).then({ do: 'remove', savepoint: true });
  return { verdict: observed ? 'stop' : 'stopped', steps: steps.record('STOPPED', null).list };
}

/** Active and in the runtime at its spec version: follow what the runtime says of it. */
function follow(input: DecideInput, observed: NonNullable<DecideInput['observed']>): Action {
  if (!observed.phase) return { verdict: 'unknown', steps: [] };
  const steps = new Steps(input.job).record(observed.phase, observed.reason);
  const entered = steps.list.length > 0;
  if (entered && observed.phase === 'RECOVERING') {
    // The runtime restarted it (or found it hung): that counts against the budget too.
    if (!input.history) return READ_HISTORY;
    const giveUp = overBudget(countRestarts([...input.history, { state: 'RECOVERING', reason: observed.reason }]), input.policy);
    if (giveUp) return givingUp(steps, giveUp);
  }
  if (observed.hung) {
    return {
      verdict: 'hung',
      steps: steps.then(REMOVE).list,
      log: { level: 'warn', message: 'job process hung; removing it, to start it again', fields: { reason: observed.reason } },
    };
  }
  if (!entered) return { verdict: 'in-sync', steps: [] };
  return { verdict: observed.phase === 'RECOVERING' ? 'runtime-restart' : 'follow', steps: steps.list };
}

/**
 * Active and not in the runtime: held FAILED, or dead (restarted after a backoff, within
 * its budget), or waiting out that backoff. Undefined: none of these, deploy it.
 */
function absent(input: DecideInput): Action | undefined {
  const { job, remembered, now } = input;
  // A job that failed for good at this spec version stays FAILED until its spec changes or
  // it is activated again.
  if (job.actual_state === 'FAILED' && remembered.heldVersion === job.spec_version) return { verdict: 'held', steps: [] };
  if (UP.has(job.actual_state) && !remembered.restart) return died(input);
  if (remembered.restart?.specVersion !== job.spec_version) return undefined;
  if (now < remembered.restart.dueAt) return { verdict: 'backoff', steps: [] };
  return { verdict: 'restart', steps: [APPLY, CLEAR_RESTART] };
}

/** Gone while it should be up: it died, or (on a new gateway's first pass) stopped with the previous gateway. */
function died(input: DecideInput): Action {
  const { job, policy, now } = input;
  const steps = new Steps(job);
  if (input.remembered.firstPass) {
    // The local runtime's processes go with the gateway: resumed at once, not counted.
    steps.record('RECOVERING', RESUME_REASON).then({ do: 'schedule-restart', dueAt: now }, APPLY, CLEAR_RESTART);
    return { verdict: 'resume', steps: steps.list };
  }
  if (!input.history) return READ_HISTORY;
  // A hung process the runtime reported was counted when it reported it.
  const counted = isRuntimeRestart(job.actual_state, job.actual_reason);
  const decision = decideRestart(countRestarts(input.history), policy, input.jitter, counted);
  if (decision.action === 'give-up') return givingUp(steps, decision.reason);
  steps.record('RECOVERING', restartReason(decision.attempt, policy, decision.delayMs));
  steps.then({ do: 'schedule-restart', dueAt: now + decision.delayMs });
  // Scheduled even when due now: an apply that fails leaves the restart due, not a new death.
  if (decision.delayMs === 0) steps.then(APPLY, CLEAR_RESTART);
  return {
    verdict: 'died',
    steps: steps.list,
    log: { level: 'warn', message: 'job died; restarting it', fields: { attempt: decision.attempt, delayMs: decision.delayMs } },
  };
}

/** Too many restarts: the runtime lets go of the job, which ends FAILED saying why. */
function givingUp(steps: Steps, reason: string): Action {
  steps.then(CLEAR_RESTART, REMOVE).record('FAILED', reason).then({ do: 'hold' });
  return { verdict: 'give-up', steps: steps.list, log: { level: 'warn', message: 'job keeps dying; giving up on it', fields: { reason } } };
}

/** Missing from the runtime, or there at another spec version: deploy this one. */
function deploy({ job, observed }: DecideInput): Action {
  const steps = new Steps(job).then(CLEAR_RESTART, APPLY);
  if (!observed) return { verdict: 'deploy', steps: steps.record('STARTING', null).list };
  if (observed.specVersion !== 0) return { verdict: 'redeploy', steps: steps.record('RECOVERING', REDEPLOY_REASON).list };
  // Version 0 (spec versions start at 1) is a job whose apply stopped partway, say when the
  // gateway died: this finishes it, nothing about its spec changed. A first activation
  // finished that way is still just starting.
  const wasUp = job.actual_state === 'RUNNING' || job.actual_state === 'RECOVERING';
  steps.record(wasUp ? 'RECOVERING' : 'STARTING', wasUp ? HALF_MADE_REASON : null);
  return { verdict: 'half-made', steps: steps.list, log: { level: 'info', message: 'completing a half-made deployment' } };
}
