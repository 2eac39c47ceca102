import { describe, expect, it } from 'vitest';
import { observedJobOf, operatorErrorMessage, phaseOf } from '../../../src/runtime/kubernetes/deployment-status.js';
import type { FlinkDeploymentObject } from '../../../src/runtime/kubernetes/flink-deployment.js';

const deployment = (status: FlinkDeploymentObject['status'], generation = 1): FlinkDeploymentObject => ({
  metadata: {
    name: 'pipe-x',
    generation,
    labels: { 'weir.dev/job-kind': 'pipeline', 'weir.dev/job-id': 'j1', 'weir.dev/account': 'a1', 'weir.dev/spec-version': '3' },
  },
  status,
});

// Pure mapping of the operator's status onto Weir's phases (the integration tests write
// these statuses into a real apiserver; this covers every branch).
describe('FlinkDeployment status → phase', () => {
  it.each([
    [undefined, 'STARTING', null],
    [{ lifecycleState: 'CREATED' }, 'STARTING', null],
    [{ lifecycleState: 'DEPLOYED', jobStatus: { state: 'RUNNING' } }, 'STARTING', null],
    [{ lifecycleState: 'UPGRADING' }, 'STARTING', null],
    [{ lifecycleState: 'STABLE', jobStatus: { state: 'RUNNING' } }, 'RUNNING', null],
    [{ lifecycleState: 'STABLE', jobStatus: { state: 'FINISHED' } }, 'FINISHED', null],
    [{ lifecycleState: 'STABLE', jobStatus: { state: 'RESTARTING' } }, 'RECOVERING', 'Flink is restarting the job after a failure.'],
    [{ lifecycleState: 'DEPLOYED', jobManagerDeploymentStatus: 'ERROR', error: 'CrashLoopBackOff' }, 'RECOVERING', 'CrashLoopBackOff'],
    [{ lifecycleState: 'ROLLED_BACK' }, 'RECOVERING', 'The operator rolled the job back to its last stable spec.'],
    [{ lifecycleState: 'FAILED', error: 'boom' }, 'FAILED', 'boom'],
    [{ lifecycleState: 'STABLE', jobStatus: { state: 'FAILED' } }, 'FAILED', 'The Flink job failed.'],
    [{ lifecycleState: 'SUSPENDED' }, 'STARTING', 'The job is suspended.'],
  ] as const)('%j → %s', (status, phase, reason) => {
    expect(phaseOf(deployment(status as FlinkDeploymentObject['status']))).toEqual({ phase, reason });
  });

  it('says nothing from a status of an older generation', () => {
    expect(phaseOf(deployment({ lifecycleState: 'FAILED', observedGeneration: 1 }, 2)).phase).toBe('STARTING');
  });

  it('reads the operator error JSON, with its root cause', () => {
    expect(operatorErrorMessage(JSON.stringify({ message: 'Job failed', throwableList: [{ message: 'disk full' }] }))).toBe(
      'Job failed (caused by: disk full)',
    );
    expect(operatorErrorMessage(JSON.stringify({ message: 'x: disk full', throwableList: [{ message: 'disk full' }] }))).toBe('x: disk full');
    expect(operatorErrorMessage('plain text')).toBe('plain text');
    expect(operatorErrorMessage(undefined)).toBeNull();
  });

  it('ignores objects Weir did not label, and objects being deleted', () => {
    expect(observedJobOf({ metadata: { name: 'other', labels: {} } })).toBeUndefined();
    const going = deployment({ lifecycleState: 'STABLE' });
    going.metadata!.deletionTimestamp = new Date();
    expect(observedJobOf(going)).toBeUndefined();
    expect(observedJobOf(deployment(undefined))).toMatchObject({ kind: 'PIPELINE', id: 'j1', accountId: 'a1', specVersion: 3 });
  });
});
