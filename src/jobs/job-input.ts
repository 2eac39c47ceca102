import { ValidationError } from '../platform/errors.js';
import { MINUTE, SECOND } from '../platform/time.js';

/** A single job never asks for more tasks than this, whatever the tier allows in total. */
export const MAX_TASK_COUNT_PER_JOB = 64;

export function checkTaskCount(path: readonly (string | number)[], value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > MAX_TASK_COUNT_PER_JOB) {
    throw ValidationError.of(path, `must be an integer from 1 to ${MAX_TASK_COUNT_PER_JOB}`);
  }
  return value;
}

/** The checkpoint interval a job may ask for: commits (and exactly-once output) follow it. */
export const MIN_CHECKPOINT_INTERVAL_MS = 1 * SECOND;
export const MAX_CHECKPOINT_INTERVAL_MS = 10 * MINUTE;

/** A checkpoint interval as given (null or absent: not given, undefined back). */
export function checkCheckpointInterval(path: readonly (string | number)[], value: number | null | undefined): number | undefined {
  if (value == null) return undefined;
  if (!Number.isInteger(value) || value < MIN_CHECKPOINT_INTERVAL_MS || value > MAX_CHECKPOINT_INTERVAL_MS) {
    throw ValidationError.of(path, `must be an integer from ${MIN_CHECKPOINT_INTERVAL_MS} to ${MAX_CHECKPOINT_INTERVAL_MS} (milliseconds)`);
  }
  return value;
}
