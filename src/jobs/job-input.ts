import { ValidationError } from '../platform/errors.js';

/** A single job never asks for more tasks than this, whatever the tier allows in total. */
export const MAX_TASK_COUNT_PER_JOB = 64;

export function checkTaskCount(path: readonly (string | number)[], value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > MAX_TASK_COUNT_PER_JOB) {
    throw ValidationError.of(path, `must be an integer from 1 to ${MAX_TASK_COUNT_PER_JOB}`);
  }
  return value;
}
