import type { ObservedJob } from '../runtime.js';
import type { ObservedPhase } from '../../jobs/job-spec.js';
import type { FlinkDeploymentObject } from './flink-deployment.js';
import { LABEL_ACCOUNT, LABEL_JOB_ID, LABEL_JOB_KIND, LABEL_SPEC_VERSION, kindFromLabel } from './kubernetes-options.js';

/**
 * The operator writes `status.error` as JSON of its FlinkResourceException
 * (`{"type": …, "message": …, "throwableList": [...]}`); older versions wrote plain text.
 */
export function operatorErrorMessage(error: string | undefined): string | null {
  if (!error) return null;
  try {
    const parsed = JSON.parse(error) as { message?: unknown; throwableList?: { message?: unknown }[] };
    const root = parsed.throwableList?.at(-1)?.message;
    const message = typeof parsed.message === 'string' ? parsed.message : null;
    if (message && typeof root === 'string' && root !== message && !message.includes(root)) return `${message} (caused by: ${root})`;
    return message ?? error;
  } catch {
    return error;
  }
}

/**
 * Weir's view of a FlinkDeployment, from the fields the operator computes. Order matters:
 * a status of an older spec says nothing; then a failure outranks everything, then
 * recovery, then the happy path.
 */
export function phaseOf(deployment: FlinkDeploymentObject): { phase: ObservedPhase; reason: string | null } {
  const status = deployment.status ?? {};
  const lifecycle = status.lifecycleState;
  const job = status.jobStatus?.state;
  const jm = status.jobManagerDeploymentStatus;
  const error = operatorErrorMessage(status.error);
  const generation = deployment.metadata?.generation;
  const observedGeneration = status.observedGeneration;
  if (generation !== undefined && observedGeneration !== undefined && observedGeneration < generation) {
    // The status still describes the previous spec: the operator has not picked this one up.
    return { phase: 'STARTING', reason: null };
  }
  if (lifecycle === 'FAILED' || job === 'FAILED') {
    return { phase: 'FAILED', reason: error ?? 'The Flink job failed.' };
  }
  if (job === 'FINISHED') return { phase: 'FINISHED', reason: null };
  if (jm === 'ERROR') {
    return { phase: 'RECOVERING', reason: error ?? 'The JobManager deployment failed; the operator is recovering it.' };
  }
  if (job === 'RESTARTING' || job === 'FAILING') {
    return { phase: 'RECOVERING', reason: error ?? 'Flink is restarting the job after a failure.' };
  }
  if (lifecycle === 'ROLLING_BACK' || lifecycle === 'ROLLED_BACK') {
    return { phase: 'RECOVERING', reason: error ?? 'The operator rolled the job back to its last stable spec.' };
  }
  if (lifecycle === 'STABLE' && job === 'RUNNING') return { phase: 'RUNNING', reason: null };
  if (lifecycle === 'SUSPENDED') return { phase: 'STARTING', reason: 'The job is suspended.' };
  // CREATED, DEPLOYED (not yet stable), UPGRADING, or no status yet.
  return { phase: 'STARTING', reason: error };
}

/** The job a FlinkDeployment stands for, or undefined for one Weir did not write. */
export function observedJobOf(deployment: FlinkDeploymentObject): ObservedJob | undefined {
  const labels = deployment.metadata?.labels ?? {};
  const kind = kindFromLabel(labels[LABEL_JOB_KIND]);
  const id = labels[LABEL_JOB_ID];
  const accountId = labels[LABEL_ACCOUNT];
  const specVersion = Number(labels[LABEL_SPEC_VERSION]);
  if (!kind || !id || !accountId || !Number.isInteger(specVersion)) return undefined;
  // Being deleted: gone as far as the reconciler is concerned.
  if (deployment.metadata?.deletionTimestamp) return undefined;
  return { kind, id, accountId, specVersion, ...phaseOf(deployment) };
}
