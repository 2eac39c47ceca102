import { describe, expect, it } from 'vitest';
import { OBSERVED_PHASES } from '../../src/jobs/job-spec.js';
import { ACTUAL_STATES, DESIRED_STATES, type ActualState, type DesiredState } from '../../src/jobs/job.table.js';
import { MINUTE, SECOND } from '../../src/platform/time.js';
import { decide, type DecideInput, type Remembered, type Step, type Verdict } from '../../src/reconcile/decide.js';
import {
  HALF_MADE_REASON,
  REDEPLOY_REASON,
  restartReason,
  RESUME_REASON,
  type RestartPolicy,
  type SeenTransition,
} from '../../src/reconcile/restart-policy.js';

/**
 * The reconciler's decision table: every (desired state, what the runtime shows, what the
 * row says, what earlier passes remember, the restart budget) has exactly one row. The
 * dimensions come from the enums, so a new phase or state without a row fails here.
 */
const POLICY: RestartPolicy = { maxRestarts: 3, windowMs: MINUTE, minBackoffMs: SECOND, maxBackoffMs: 4 * SECOND };
const NOW = 1_000_000;
const VERSION = 2;

const BOOM = 'java.lang.RuntimeException: boom';
const HUNG = 'The job process did not answer for 60 s; it was stopped and restarts from its latest checkpoint.';
const FLINK_FAILED = 'Column idd not found';
const OWN = restartReason(1, POLICY, 0);

// What the runtime shows: nothing, each phase at the row's spec version, or one of these.
const OBSERVED_EXTRAS = ['absent', 'unknown', 'hung', 'older', 'half-made'] as const;
type Observed = (typeof OBSERVED_PHASES)[number] | (typeof OBSERVED_EXTRAS)[number];
const OBSERVED: readonly Observed[] = [...OBSERVED_EXTRAS, ...OBSERVED_PHASES];

function observedOf(observed: Observed): DecideInput['observed'] {
  switch (observed) {
    case 'absent':
      return undefined;
    case 'unknown':
      return { specVersion: VERSION, phase: null, reason: null };
    case 'hung':
      return { specVersion: VERSION, phase: 'RECOVERING', reason: HUNG, hung: true };
    case 'older':
      return { specVersion: VERSION - 1, phase: 'RUNNING', reason: null };
    case 'half-made':
      return { specVersion: 0, phase: 'STARTING', reason: null };
    default:
      return { specVersion: VERSION, phase: observed, reason: REASON_OF[observed] ?? null };
  }
}

// What the row says: each actual state with its usual reason, and RECOVERING for each cause.
const PRIOR_EXTRAS = ['RECOVERING (Weir)', 'RECOVERING (hung)'] as const;
type Prior = ActualState | (typeof PRIOR_EXTRAS)[number];
const PRIOR: readonly Prior[] = [...ACTUAL_STATES, ...PRIOR_EXTRAS];
const REASON_OF: Partial<Record<ActualState, string>> = { RECOVERING: BOOM, FAILED: FLINK_FAILED };

function priorOf(prior: Prior): SeenTransition {
  if (prior === 'RECOVERING (Weir)') return { state: 'RECOVERING', reason: OWN };
  if (prior === 'RECOVERING (hung)') return { state: 'RECOVERING', reason: HUNG };
  return { state: prior, reason: REASON_OF[prior] ?? null };
}

const REMEMBERED = {
  nothing: { heldVersion: undefined, restart: undefined, firstPass: false },
  'first pass': { heldVersion: undefined, restart: undefined, firstPass: true },
  held: { heldVersion: VERSION, restart: undefined, firstPass: false },
  'held, older spec': { heldVersion: VERSION - 1, restart: undefined, firstPass: false },
  backoff: { heldVersion: undefined, restart: { specVersion: VERSION, dueAt: NOW + SECOND }, firstPass: false },
  'restart due': { heldVersion: undefined, restart: { specVersion: VERSION, dueAt: NOW }, firstPass: false },
  'restart due, older spec': { heldVersion: undefined, restart: { specVersion: VERSION - 1, dueAt: NOW - 1 }, firstPass: false },
} satisfies Record<string, Remembered>;
type Memory = keyof typeof REMEMBERED;
const MEMORY = Object.keys(REMEMBERED) as Memory[];

const BUDGETS = ['left', 'spent'] as const;
type Budget = (typeof BUDGETS)[number];

/** The window's history: two starts, or the budget's worth of restarts; then the row's state. */
function historyOf(budget: Budget, prior: Prior): SeenTransition[] {
  const running: SeenTransition = { state: 'RUNNING', reason: null };
  const before: SeenTransition[] =
    budget === 'left'
      ? [{ state: 'STARTING', reason: null }, running]
      : Array.from({ length: POLICY.maxRestarts }, (_, i) => [{ state: 'RECOVERING' as const, reason: restartReason(i + 1, POLICY, 0) }, running]).flat();
  return [...before, priorOf(prior)];
}

interface Case {
  readonly desired: DesiredState;
  readonly observed: Observed;
  readonly prior: Prior;
  readonly memory: Memory;
  readonly budget: Budget;
}

/** A set of values of one dimension: one, several, all but some, or any. */
type Match<T> = T | readonly T[] | { readonly except: readonly T[] } | '*';
const except = <T,>(...values: T[]) => ({ except: values });
const UP: Prior[] = ['STARTING', 'RUNNING', 'RECOVERING', 'RECOVERING (Weir)', 'RECOVERING (hung)'];
const DOWN: Prior[] = ['STOPPING', 'STOPPED', 'FAILED', 'FINISHED'];

interface Row {
  readonly desired: DesiredState;
  readonly observed: Match<Observed>;
  readonly prior: Match<Prior>;
  readonly memory?: Match<Memory>;
  /** Given when decide has to read the restart history for these cases (and only then). */
  readonly budget?: Budget;
  readonly verdict: Verdict;
  readonly steps: readonly unknown[];
}

const rec = (state: ActualState, reason: string | null = null) => `record ${state}${reason ? ` (${reason})` : ''}`;
const gaveUp = (cause: string) => expect.stringMatching(new RegExp(`^record FAILED \\(Restarted \\d times in 1 minute; last cause: ${cause}`));
const stop = ['clear-restart', 'remove'];
const GIVE_UP = (cause = '') => [...stop, gaveUp(cause), 'hold'];
const RESTART_1_NOW = [rec('RECOVERING', restartReason(1, POLICY, 0)), 'schedule-restart +0 ms', 'apply', 'clear-restart'];

const rows: Row[] = [
  // Deactivated: the runtime lets go of it; a later activation starts afresh.
  { desired: 'INACTIVE', observed: 'absent', prior: except('STOPPED'), verdict: 'stopped', steps: ['forget', rec('STOPPED')] },
  { desired: 'INACTIVE', observed: 'absent', prior: 'STOPPED', verdict: 'stopped', steps: ['forget'] },
  { desired: 'INACTIVE', observed: except('absent'), prior: except('STOPPING'), verdict: 'stop', steps: ['forget', rec('STOPPING'), 'remove', rec('STOPPED')] },
  { desired: 'INACTIVE', observed: except('absent'), prior: 'STOPPING', verdict: 'stop', steps: ['forget', 'remove', rec('STOPPED')] },

  // Active, in the runtime at its spec version: follow the runtime.
  { desired: 'ACTIVE', observed: 'unknown', prior: '*', verdict: 'unknown', steps: [] },
  ...(['STARTING', 'RUNNING', 'FAILED', 'FINISHED'] as const).flatMap((phase): Row[] => [
    { desired: 'ACTIVE', observed: phase, prior: phase, verdict: 'in-sync', steps: [] },
    { desired: 'ACTIVE', observed: phase, prior: except(phase), verdict: 'follow', steps: [rec(phase, REASON_OF[phase])] },
  ]),
  // Flink restarts it itself: a restart, counted against the budget.
  { desired: 'ACTIVE', observed: 'RECOVERING', prior: 'RECOVERING', verdict: 'in-sync', steps: [] },
  { desired: 'ACTIVE', observed: 'RECOVERING', prior: except('RECOVERING'), budget: 'left', verdict: 'runtime-restart', steps: [rec('RECOVERING', BOOM)] },
  { desired: 'ACTIVE', observed: 'RECOVERING', prior: except('RECOVERING'), budget: 'spent', verdict: 'give-up', steps: [rec('RECOVERING', BOOM), ...GIVE_UP(BOOM)] },
  // Hung (never started, or silent too long): removed, to be restarted as one that died.
  { desired: 'ACTIVE', observed: 'hung', prior: 'RECOVERING (hung)', verdict: 'hung', steps: ['remove'] },
  { desired: 'ACTIVE', observed: 'hung', prior: except('RECOVERING (hung)'), budget: 'left', verdict: 'hung', steps: [rec('RECOVERING', HUNG), 'remove'] },
  { desired: 'ACTIVE', observed: 'hung', prior: except('RECOVERING (hung)'), budget: 'spent', verdict: 'give-up', steps: [rec('RECOVERING', HUNG), ...GIVE_UP('The job process did not answer')] },

  // Active, in the runtime at another spec version.
  { desired: 'ACTIVE', observed: 'older', prior: '*', verdict: 'redeploy', steps: ['clear-restart', 'apply', rec('RECOVERING', REDEPLOY_REASON)] },
  { desired: 'ACTIVE', observed: 'half-made', prior: ['RUNNING', 'RECOVERING', 'RECOVERING (Weir)', 'RECOVERING (hung)'], verdict: 'half-made', steps: ['clear-restart', 'apply', rec('RECOVERING', HALF_MADE_REASON)] },
  { desired: 'ACTIVE', observed: 'half-made', prior: 'STARTING', verdict: 'half-made', steps: ['clear-restart', 'apply'] },
  { desired: 'ACTIVE', observed: 'half-made', prior: DOWN, verdict: 'half-made', steps: ['clear-restart', 'apply', rec('STARTING')] },

  // Active, not in the runtime.
  { desired: 'ACTIVE', observed: 'absent', prior: 'FAILED', memory: 'held', verdict: 'held', steps: [] },
  { desired: 'ACTIVE', observed: 'absent', prior: '*', memory: 'backoff', verdict: 'backoff', steps: [] },
  { desired: 'ACTIVE', observed: 'absent', prior: '*', memory: 'restart due', verdict: 'restart', steps: ['apply', 'clear-restart'] },
  // Gone while up: died (restarted within the budget, backing off from the second restart on)…
  { desired: 'ACTIVE', observed: 'absent', prior: UP, memory: 'first pass', verdict: 'resume', steps: [rec('RECOVERING', RESUME_REASON), 'schedule-restart +0 ms', 'apply', 'clear-restart'] },
  { desired: 'ACTIVE', observed: 'absent', prior: ['STARTING', 'RUNNING'], memory: ['nothing', 'held', 'held, older spec'], budget: 'left', verdict: 'died', steps: RESTART_1_NOW },
  // … the runtime's report of the death (Flink's restart, a hung process) was the restart counted …
  { desired: 'ACTIVE', observed: 'absent', prior: ['RECOVERING', 'RECOVERING (hung)'], memory: ['nothing', 'held', 'held, older spec'], budget: 'left', verdict: 'died', steps: RESTART_1_NOW },
  // … dying again before it was seen starting: the second restart, after a backoff.
  { desired: 'ACTIVE', observed: 'absent', prior: 'RECOVERING (Weir)', memory: ['nothing', 'held', 'held, older spec'], budget: 'left', verdict: 'died', steps: [rec('RECOVERING', restartReason(2, POLICY, 500)), 'schedule-restart +500 ms'] },
  { desired: 'ACTIVE', observed: 'absent', prior: UP, memory: ['nothing', 'held', 'held, older spec'], budget: 'spent', verdict: 'give-up', steps: GIVE_UP() },
  // Not up, or up with a restart left over from an older spec: deploy it.
  { desired: 'ACTIVE', observed: 'absent', prior: ['STOPPING', 'STOPPED', 'FINISHED'], memory: ['nothing', 'first pass', 'held', 'held, older spec'], verdict: 'deploy', steps: ['clear-restart', 'apply', rec('STARTING')] },
  { desired: 'ACTIVE', observed: 'absent', prior: 'FAILED', memory: ['nothing', 'first pass', 'held, older spec'], verdict: 'deploy', steps: ['clear-restart', 'apply', rec('STARTING')] },
  { desired: 'ACTIVE', observed: 'absent', prior: except('STARTING'), memory: 'restart due, older spec', verdict: 'deploy', steps: ['clear-restart', 'apply', rec('STARTING')] },
  { desired: 'ACTIVE', observed: 'absent', prior: 'STARTING', memory: 'restart due, older spec', verdict: 'deploy', steps: ['clear-restart', 'apply'] },
];

function matches<T>(match: Match<T> | undefined, value: T): boolean {
  if (match === undefined || match === '*') return true;
  if (Array.isArray(match)) return match.includes(value);
  if (typeof match === 'object' && match !== null && 'except' in match) return !match.except.includes(value);
  return match === value;
}

const covers = (row: Row, c: Case) =>
  row.desired === c.desired &&
  matches(row.observed, c.observed) &&
  matches(row.prior, c.prior) &&
  matches(row.memory, c.memory) &&
  matches(row.budget, c.budget);

const ALL_CASES: Case[] = DESIRED_STATES.flatMap((desired) =>
  OBSERVED.flatMap((observed) =>
    PRIOR.flatMap((prior) => MEMORY.flatMap((memory) => BUDGETS.map((budget) => ({ desired, observed, prior, memory, budget })))),
  ),
);

const show = (step: Step): string => {
  switch (step.do) {
    case 'record':
      return rec(step.state, step.reason);
    case 'schedule-restart':
      return `schedule-restart +${step.dueAt - NOW} ms`;
    default:
      return step.do;
  }
};

function inputOf(c: Case): DecideInput {
  const prior = priorOf(c.prior);
  return {
    job: { desired_state: c.desired, spec_version: VERSION, actual_state: prior.state, actual_reason: prior.reason },
    observed: observedOf(c.observed),
    remembered: REMEMBERED[c.memory],
    policy: POLICY,
    now: NOW,
    jitter: 0,
  };
}

const label = (c: Case) => `${c.desired} / observed ${c.observed} / row ${c.prior} / ${c.memory} / budget ${c.budget}`;
const describeMatch = (match: Match<unknown> | undefined) =>
  match === undefined || match === '*' ? '*' : Array.isArray(match) ? match.join('|') : typeof match === 'object' && match && 'except' in match ? `not ${(match.except as unknown[]).join('|')}` : String(match);

describe('decide: the decision table', () => {
  it(`has exactly one row for each of the ${ALL_CASES.length} cases`, () => {
    const missing = ALL_CASES.filter((c) => !rows.some((row) => covers(row, c))).map(label);
    const twice = ALL_CASES.filter((c) => rows.filter((row) => covers(row, c)).length > 1).map(label);
    expect(missing).toEqual([]);
    expect(twice).toEqual([]);
  });

  const named = rows.map((row): [string, Row] => [
    `${row.desired} / observed ${describeMatch(row.observed)} / row ${describeMatch(row.prior)} / ${describeMatch(row.memory)}${row.budget ? ` / budget ${row.budget}` : ''} → ${row.verdict}`,
    row,
  ]);
  it.each(named)('%s', (_name, row) => {
    const cases = ALL_CASES.filter((c) => covers(row, c));
    expect(cases.length).toBeGreaterThan(0);
    for (const c of cases) {
      const input = inputOf(c);
      let action = decide(input);
      // The restart history is read only where a restart is counted.
      expect(action.verdict === 'read-history', label(c)).toBe(row.budget !== undefined);
      if (action.verdict === 'read-history') action = decide({ ...input, history: historyOf(c.budget, c.prior) });
      expect({ verdict: action.verdict, steps: action.steps.map(show) }, label(c)).toEqual({ verdict: row.verdict, steps: row.steps });
    }
  });
});
