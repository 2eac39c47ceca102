import { PREVIEW_CLUSTER_SETTINGS, PREVIEW_GATEWAY_SETTINGS } from '../../preview/preview-sandbox.js';

/**
 * `WEIR_K8S_FLINK_CONFIG`: Flink options an installation adds to every FlinkDeployment
 * Weir writes (jobs and the preview session cluster), for what depends on the place it
 * runs in — the object store's endpoint and credentials (`s3.endpoint`,
 * `s3.path.style.access`, `s3.access-key`, …), a metrics reporter, timeouts.
 *
 * What Weir sets itself stays Weir's: sizing, slots, high availability, checkpointing,
 * the REST API and the preview sandbox. Those options are refused when the config is
 * loaded, so an installation cannot undo a job's limits or a preview's isolation by
 * accident.
 */
const RESERVED_PREFIXES = [
  'taskmanager.',
  'jobmanager.',
  'high-availability',
  'execution.checkpointing.',
  'kubernetes.',
  'rest.',
  'web.',
  'slotmanager.',
  'restart-strategy',
  'parallelism.',
  'table.',
  'sql-gateway.',
];

const SANDBOX_KEYS = new Set([...Object.keys(PREVIEW_CLUSTER_SETTINGS), ...Object.keys(PREVIEW_GATEWAY_SETTINGS)]);

/** Whether Weir sets this Flink option itself (so an installation may not). */
export function isWeirFlinkOption(key: string): boolean {
  return SANDBOX_KEYS.has(key) || RESERVED_PREFIXES.some((prefix) => key.startsWith(prefix));
}
