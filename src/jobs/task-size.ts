import type { TaskSize } from './job.table.js';

/**
 * Heap of a job's JVM by task size in the local runtime: its whole application cluster
 * (JobManager and every task) shares it. The smallest heap a runtime gives a job of that
 * size, so what fits here fits everywhere (a Kubernetes TaskManager pod gets more).
 */
export const TASK_HEAP_MB: Readonly<Record<TaskSize, number>> = Object.freeze({ S: 256, M: 512, L: 1024 });
