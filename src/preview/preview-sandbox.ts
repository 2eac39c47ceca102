/**
 * The Flink settings that keep a preview contained, in one place for both backends
 * (runtime/local/preview-cluster.ts, runtime/kubernetes/preview-manifests.ts) and the
 * preview service's SQL session. A preview runs a tenant's SELECT on a shared session
 * cluster, so each setting here is part of the sandbox; test/preview/preview-sandbox.test.ts
 * pins the ones security rests on and that every backend applies them.
 *
 * Checkpointing stays off: no `execution.checkpointing.interval` anywhere. The rows a
 * preview collects would only show after each checkpoint, and a preview has no state
 * worth keeping.
 */

/** What every preview job runs with: the cluster's defaults, the SQL Gateway's, and each session's. */
export const PREVIEW_JOB_SETTINGS: Readonly<Record<string, string>> = {
  // No OPTIONS hints: a preview cannot point a table at another account's topic, or at
  // other servers and credentials than Weir wrote into its tables.
  'table.dynamic-table-options.enabled': 'false',
  // One task: the preview's one-slot TaskManager holds all of it, and nothing else.
  'parallelism.default': '1',
  'table.exec.resource.default-parallelism': '1',
  // A preview that fails (or whose TaskManager is retired) ends; it is never restarted,
  // which could put it on a TaskManager that ran another account's preview.
  'restart-strategy.type': 'none',
  'execution.runtime-mode': 'streaming',
};

/** The session cluster's own settings (JobManager and TaskManagers), beyond ports and memory. */
export const PREVIEW_CLUSTER_SETTINGS: Readonly<Record<string, string>> = {
  ...PREVIEW_JOB_SETTINGS,
  // One slot per TaskManager: a TaskManager runs one preview, then it is retired, so no
  // two previews (two accounts) ever share a JVM.
  'taskmanager.numberOfTaskSlots': '1',
  // No jar upload or run through the REST API: the only way in is the SQL Gateway.
  'web.submit.enable': 'false',
  // Hides the web UI's cancel button (in Flink 1.20 it changes nothing else: the REST
  // cancel Weir uses for a misplaced or leftover preview job works either way).
  'web.cancel.enable': 'false',
  // The REST API caches a job's details this long (default 3 s): a preview waits to see
  // its job running before it shows rows, and the pool reads where jobs ran, through it.
  'web.refresh-interval': '100 ms',
};

/** The SQL Gateway's own settings, beyond its address and port. */
export const PREVIEW_GATEWAY_SETTINGS: Readonly<Record<string, string>> = {
  ...PREVIEW_JOB_SETTINGS,
  // Previews go to the session cluster's JobManager (rest.address / rest.port).
  'execution.target': 'remote',
  // A session whose preview was abandoned (Weir's gateway killed) goes away on its own.
  'sql-gateway.session.idle-timeout': '3 min',
  'sql-gateway.session.check-interval': '30 s',
};

/** The properties of one preview's SQL session; its jobs are named after the account. */
export function previewSessionProperties(accountId: string): Record<string, string> {
  return { ...PREVIEW_JOB_SETTINGS, 'pipeline.name': `weir-preview-${accountId}` };
}
