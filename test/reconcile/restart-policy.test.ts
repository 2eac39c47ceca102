import { describe, expect, it } from 'vitest';
import { SECOND } from '../../src/platform/time.js';
import {
  backoffMs,
  countRestarts,
  decideRestart,
  DEFAULT_RESTART_POLICY,
  REDEPLOY_REASON,
  RESUME_REASON,
  restartReason,
  type SeenTransition,
} from '../../src/reconcile/restart-policy.js';

const policy = DEFAULT_RESTART_POLICY;
const own = (attempt: number): SeenTransition => ({ state: 'RECOVERING', reason: restartReason(attempt, policy, 0) });
const runtime = (reason: string): SeenTransition => ({ state: 'RECOVERING', reason });
const at = (state: SeenTransition['state']): SeenTransition => ({ state, reason: null });

describe('restart policy', () => {
  it('counts each death once, whether the reconciler or the runtime restarted the job', () => {
    expect(countRestarts([at('STARTING'), at('RUNNING')])).toEqual({ restarts: 0, lastCause: null });
    // Died twice without ever being seen starting again: two restarts back to back.
    expect(countRestarts([at('RUNNING'), own(1), own(2)]).restarts).toBe(2);
    // A hung process the runtime killed, then the reconciler's restart of it: one death.
    expect(countRestarts([at('RUNNING'), runtime('did not answer'), own(1), at('STARTING')])).toEqual({
      restarts: 1,
      lastCause: 'did not answer',
    });
    // Flink restarting, reporting two root exceptions in a row: one restart.
    expect(countRestarts([at('RUNNING'), runtime('A'), runtime('B'), at('RUNNING'), runtime('C')])).toEqual({
      restarts: 2,
      lastCause: 'C',
    });
    // A redeploy after a spec change, or a resume after a gateway restart, is not a restart.
    expect(countRestarts([at('RUNNING'), { state: 'RECOVERING', reason: REDEPLOY_REASON }]).restarts).toBe(0);
    expect(countRestarts([at('RUNNING'), { state: 'RECOVERING', reason: RESUME_REASON }, own(1)]).restarts).toBe(1);
  });

  it('backs off exponentially from the second restart, jittered into the upper half, up to the bound', () => {
    expect(backoffMs(1, policy, 0.5)).toBe(0);
    expect([2, 3, 4, 5, 6, 7, 8, 12].map((n) => backoffMs(n, policy, 0))).toEqual(
      [0.5, 1, 2, 4, 8, 16, 30, 30].map((s) => s * SECOND),
    );
    expect(backoffMs(3, policy, 0.999)).toBe(1999);
  });

  it('gives up once the window holds maxRestarts restarts', () => {
    expect(decideRestart({ restarts: 4, lastCause: null }, policy, 0)).toEqual({ action: 'restart', attempt: 5, delayMs: 4 * SECOND });
    const giveUp = decideRestart({ restarts: 5, lastCause: 'java.lang.OutOfMemoryError: Java heap space' }, policy, 0);
    expect(giveUp).toEqual({
      action: 'give-up',
      reason: expect.stringMatching(/^Restarted 5 times in 30 minutes; last cause: java.lang.OutOfMemoryError: Java heap space\. /),
    });
  });
});
