import { CoreV1Api, KubernetesObjectApi, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../../platform/logger.js';
import { isUuid } from '../../platform/ids.js';
import { SECOND } from '../../platform/time.js';
import type { ObservedJob, RemoveOptions, RemoveResult, Runtime } from '../runtime.js';
import { streamsOf, type JobRef, type JobSpec } from '../../jobs/job-spec.js';
import { QUOTA_NAME, namespaceContents, namespaceObject, type AccountNamespaceInput } from './account-namespace.js';
import { observedJobOf, operatorErrorMessage, phaseOf } from './deployment-status.js';
import { DeploymentWatch } from './deployment-watch.js';
import { FLINK_API_VERSION, flinkDeployment, type FlinkDeploymentObject } from './flink-deployment.js';
import { isConflict, isNotFound, quotaErrorOf } from './kube-errors.js';
import {
  DEFAULT_QUIET_WATCH_MS,
  DEFAULT_WATCH_TIMEOUT_SECONDS,
  FIELD_MANAGER,
  LABEL_ACCOUNT,
  LABEL_JOB_ID,
  LABEL_JOB_KIND,
  LABEL_SPEC_VERSION,
  LABEL_STATE_GENERATION,
  deploymentNameOf,
  kindFromLabel,
  managedSelector,
  namespaceOf,
  specSecretNameOf,
  stateConfigMapNameOf,
  type KubernetesRuntimeOptions,
  type TierLimits,
} from './kubernetes-options.js';
import { pollUntil } from '../../platform/poll.js';

/** A FlinkDeployment created but not yet finished by apply(): observe() reports this version. */
const PENDING_VERSION = '0';

/** What the operator writes as `upgradeSavepointPath` after a last-state upgrade: no savepoint. */
const LAST_STATE_PLACEHOLDER = 'KUBERNETES_OPERATOR_LAST_STATE';
/** The keys of a job's state ConfigMap. */
const STATE_GENERATION_KEY = 'stateGeneration';
const SAVEPOINT_KEY = 'savepoint';

/**
 * The Kubernetes runtime: each active job is a FlinkDeployment (application mode) in its
 * account's namespace, which the Flink Kubernetes Operator turns into a Flink cluster;
 * the namespace is set up on the account's first activation. All writes are server-side
 * apply (or create/delete), so every step can be repeated after a crash; everything the
 * runtime reports comes from a watch over the FlinkDeployments' status.
 */
export class KubernetesRuntime implements Runtime {
  readonly name = 'kubernetes';
  private readonly objects: KubernetesObjectApi;
  private readonly core: CoreV1Api;
  private readonly watch: DeploymentWatch;
  private readonly logger: Logger;
  /** Accounts whose namespace this process has set up, with the limits it was set up for. */
  private readonly namespaces = new Map<string, { readonly limits: string; readonly ready: Promise<string> }>();
  /** When keptStates last listed the state ConfigMaps. */
  private keptStatesListedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: KubernetesRuntimeOptions) {
    this.logger = options.logger;
    this.objects = KubernetesObjectApi.makeApiClient(options.kubeConfig);
    this.core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.watch = new DeploymentWatch({
      kubeConfig: options.kubeConfig,
      labelSelector: managedSelector(options.instance),
      logger: options.logger.child({ component: 'flink-deployment-watch' }),
      quietMs: options.quietWatchMs ?? DEFAULT_QUIET_WATCH_MS,
      watchTimeoutSeconds: options.watchTimeoutSeconds ?? DEFAULT_WATCH_TIMEOUT_SECONDS,
    });
    this.watch.start();
  }

  /** Watch counters (lists, watches, failures, quiet restarts, 410s), for tests and metrics. */
  get watchStats(): Readonly<DeploymentWatch['stats']> {
    return this.watch.stats;
  }

  /** Called whenever a FlinkDeployment changes, e.g. to wake the reconciler early. */
  onChange(listener: () => void): () => void {
    return this.watch.onChange(listener);
  }

  namespaceOf(accountId: string): string {
    return namespaceOf(this.options.namespacePrefix, accountId);
  }

  async apply(spec: JobSpec): Promise<void> {
    const namespace = await this.ensureNamespace(spec.accountId);
    const name = deploymentNameOf(spec);
    const current = this.watch.get(namespace, name);
    if (current?.metadata?.labels?.[LABEL_SPEC_VERSION] === String(spec.specVersion) && !current.metadata.deletionTimestamp) {
      return;
    }
    const log = this.logger.child({ accountId: spec.accountId, jobId: spec.id, kind: spec.kind });
    for (const stream of streamsOf(spec)) {
      await this.options.kafka.ensureTopic?.(this.options.kafka.topicFor(spec.accountId, stream.id));
    }
    // A new state generation (restore NONE, changed SQL) upgrades without the old state.
    // Deployments from before generations carry no label: they are of generation 1.
    const deployedGeneration = Number(current?.metadata?.labels?.[LABEL_STATE_GENERATION] ?? 1);
    const freshState = current !== undefined && deployedGeneration !== spec.state.generation;
    // Created again after a deactivation: from the savepoint it stopped with, if of this
    // generation, else from the one the generation starts from.
    const restoreFrom = current
      ? undefined
      : ((await this.savepointOf(namespace, name, spec.state.generation)) ?? spec.state.initialSnapshot ?? undefined);
    const { deployment, secret: secretFor } = flinkDeployment(spec, namespace, this.options, { freshState, restoreFrom });
    // Each deployment of the job holds credentials of its own; the last ones stop working.
    const secret = secretFor(await this.options.kafka.grantJob(spec));

    // 1. The FlinkDeployment first, marked pending: a quota refusal leaves nothing behind,
    //    and a crash before step 3 leaves an object that observe() reports at version 0,
    //    which the reconciler finishes (or removes).
    // The cache may be behind: the uid an owner reference names must be read, not remembered.
    const existing = current ? await this.readIfPresent(deployment) : undefined;
    const uid = existing?.metadata?.deletionTimestamp
      ? undefined
      : (existing?.metadata?.uid ?? (await this.createPending(withSpecVersion(deployment, PENDING_VERSION), spec)));
    if (!uid) throw new Error(`FlinkDeployment ${namespace}/${name} is still being deleted`);
    // 2. Its runner spec, owned by it so that deleting the job deletes the spec too.
    secret.metadata!.ownerReferences = [
      { apiVersion: FLINK_API_VERSION, kind: 'FlinkDeployment', name, uid, controller: true, blockOwnerDeletion: false },
    ];
    await this.serverSideApply(secret);
    // 3. The whole spec with its version: from now on the job counts as applied.
    const applied = await this.serverSideApply(deployment);
    this.watch.remember(applied as FlinkDeploymentObject);
    log.info(
      { namespace, name, specVersion: spec.specVersion, stateGeneration: spec.state.generation, freshState, restoreFrom: restoreFrom ?? null },
      'FlinkDeployment applied',
    );
  }

  /** Creates the FlinkDeployment marked pending, or finds the one already there; its uid. */
  private async createPending(pending: FlinkDeploymentObject, spec: JobSpec): Promise<string> {
    try {
      const created = await this.objects.create(pending, undefined, undefined, FIELD_MANAGER);
      this.watch.remember(created as FlinkDeploymentObject);
      return created.metadata!.uid!;
    } catch (error) {
      if (isNotFound(error)) this.namespaces.delete(spec.accountId);
      const quota = quotaErrorOf(error, `another running job (${spec.kind.toLowerCase()} "${spec.name}")`);
      // Quota admission runs before the existence check: a full quota answers 403 even
      // when the object is there already (left by a crash), so look before refusing.
      if (!quota && !isConflict(error)) throw error;
      const existing = await this.readIfPresent(pending);
      if (existing?.metadata?.uid) return existing.metadata.uid;
      throw quota ?? error;
    }
  }

  private async readIfPresent(object: KubernetesObject): Promise<KubernetesObject | undefined> {
    try {
      return await this.objects.read(header(object));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async remove(ref: JobRef, options: RemoveOptions = {}): Promise<RemoveResult> {
    const namespace = this.namespaceOf(ref.accountId);
    const name = deploymentNameOf(ref);
    const deployment = { apiVersion: FLINK_API_VERSION, kind: 'FlinkDeployment', metadata: { name, namespace } };
    let note: string | null = null;
    if (options.discardState) await this.deleteIgnoringAbsent(stateMapOf(namespace, name));
    else if (options.savepoint) note = await this.suspendWithSavepoint(ref, deployment);
    await this.deleteIgnoringAbsent(deployment);
    this.watch.forget(namespace, name);
    // Owned by the FlinkDeployment, so the garbage collector would get it; sooner is better.
    await this.deleteIgnoringAbsent({ apiVersion: 'v1', kind: 'Secret', metadata: { name: specSecretNameOf(name), namespace } });
    await this.options.kafka.revokeJob(ref);
    this.logger.info({ accountId: ref.accountId, jobId: ref.id, namespace, name, note }, 'FlinkDeployment deleted');
    return { note };
  }

  /**
   * A deactivation: the operator suspends the job with a savepoint (`job.state: suspended`,
   * `upgradeMode: savepoint`, Flink's stop-with-savepoint), whose path is kept in the job's
   * state ConfigMap, so that the FlinkDeployment can go (it counts against the account's
   * quota) and the next activation starts from that savepoint. A job that is not running,
   * or whose savepoint fails or takes too long, is stopped anyway; the answer says why.
   */
  private async suspendWithSavepoint(ref: JobRef, object: KubernetesObject & { metadata: { name: string; namespace: string } }): Promise<string | null> {
    const { name, namespace } = object.metadata;
    const current = (await this.readIfPresent(object)) as FlinkDeploymentObject | undefined;
    if (!current || current.metadata?.deletionTimestamp) return null;
    const generation = current.metadata?.labels?.[LABEL_STATE_GENERATION] ?? '1';
    const without = (why: string) =>
      `Stopped without a savepoint: ${why}; the next activation resumes from the job's previous savepoint, or from its start positions if it has none.`;
    const { phase } = phaseOf(current);
    // A finished job (a bounded source read to its end) has nothing left to resume.
    if (phase === 'FINISHED') return null;
    if (phase !== 'RUNNING') return without(`the job was not running (${phase})`);
    const before = current.status?.jobStatus?.upgradeSavepointPath;
    await this.objects.patch(
      { ...object, spec: { job: { state: 'suspended', upgradeMode: 'savepoint' } } },
      undefined,
      undefined,
      FIELD_MANAGER,
      undefined,
      PatchStrategy.MergePatch,
    );
    const timeoutMs = this.options.savepointTimeoutMs ?? 60 * SECOND;
    let operatorError: string | null = null;
    let savepoint: string;
    try {
      savepoint = await pollUntil(
        async () => {
          const seen = (await this.readIfPresent(object)) as FlinkDeploymentObject | undefined;
          if (!seen) throw new Error('its FlinkDeployment was deleted meanwhile');
          operatorError = operatorErrorMessage(seen.status?.error) ?? operatorError;
          const path = seen.status?.jobStatus?.upgradeSavepointPath;
          const taken = path && path !== before && path !== LAST_STATE_PLACEHOLDER;
          return seen.status?.lifecycleState === 'SUSPENDED' && taken ? path : undefined;
        },
        {
          timeoutMs,
          intervalMs: { first: 200, max: SECOND },
          timeoutError: () =>
            new Error(`the operator took no savepoint within ${Math.round(timeoutMs / SECOND)} s${operatorError ? ` (${operatorError})` : ''}`),
        },
      );
    } catch (error) {
      return without(error instanceof Error ? error.message : String(error));
    }
    const map = stateMapOf(namespace, name);
    await this.serverSideApply({
      ...map,
      metadata: { ...map.metadata, labels: current.metadata?.labels ?? {} },
      data: { [STATE_GENERATION_KEY]: generation, [SAVEPOINT_KEY]: savepoint },
    } as KubernetesObject);
    this.logger.info({ accountId: ref.accountId, jobId: ref.id, namespace, name, savepoint }, 'job suspended with a savepoint');
    return null;
  }

  /**
   * Stopped jobs whose state ConfigMap (their last savepoint) is kept, from its labels, in
   * every account namespace; at most once per keptStatesIntervalMs (none in between).
   */
  async keptStates(): Promise<JobRef[]> {
    const now = Date.now();
    if (now - this.keptStatesListedAt < (this.options.keptStatesIntervalMs ?? 60 * SECOND)) return [];
    this.keptStatesListedAt = now;
    const maps = await this.core.listConfigMapForAllNamespaces({ labelSelector: managedSelector(this.options.instance) });
    const kept: JobRef[] = [];
    for (const map of maps.items) {
      const labels = map.metadata?.labels ?? {};
      const [kind, id, accountId] = [kindFromLabel(labels[LABEL_JOB_KIND]), labels[LABEL_JOB_ID], labels[LABEL_ACCOUNT]];
      if (!kind || !id || !accountId || !isUuid(id)) continue;
      if (map.metadata?.name === stateConfigMapNameOf(deploymentNameOf({ kind, id }))) kept.push({ kind, id, accountId });
    }
    return kept;
  }

  /** The savepoint the job last stopped with, if it is of this state generation. */
  private async savepointOf(namespace: string, name: string, generation: number): Promise<string | undefined> {
    try {
      const map = await this.core.readNamespacedConfigMap({ name: stateConfigMapNameOf(name), namespace });
      return map.data?.[STATE_GENERATION_KEY] === String(generation) ? map.data?.[SAVEPOINT_KEY] : undefined;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async observe(): Promise<ObservedJob[]> {
    await this.watch.whenSynced(30 * SECOND);
    return this.watch.list().flatMap((deployment) => {
      const job = observedJobOf(deployment);
      return job ? [job] : [];
    });
  }

  /**
   * Checks, without writing anything, that the account's quota admits this job: a dry-run
   * create of its FlinkDeployment (the namespace itself is set up if it is missing, as
   * this is an activation). Throws KubernetesQuotaError (code QUOTA_EXCEEDED).
   */
  async admit(spec: JobSpec): Promise<void> {
    const namespace = await this.ensureNamespace(spec.accountId);
    const { deployment } = flinkDeployment(spec, namespace, this.options);
    try {
      await this.objects.create(deployment, undefined, 'All', FIELD_MANAGER);
    } catch (error) {
      const quota = quotaErrorOf(error, `another running job (${spec.kind.toLowerCase()} "${spec.name}")`);
      if (!quota && !isConflict(error)) throw error;
      // Already there (quota admission answers before the existence check): admitted.
      if (quota && !(await this.readIfPresent(deployment))) throw quota;
    }
  }

  /** Deletes the account's namespace and everything in it (account deletion). */
  async deleteAccountNamespace(accountId: string): Promise<void> {
    this.namespaces.delete(accountId);
    await this.deleteIgnoringAbsent({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: this.namespaceOf(accountId) } });
    this.logger.info({ accountId }, 'account namespace deleted');
  }

  async close(): Promise<void> {
    await this.watch.close();
  }

  /** Sets up the account's namespace once per process (and again when its tier changes). */
  private async ensureNamespace(accountId: string): Promise<string> {
    const limits = await this.options.tierLimits(accountId);
    const key = `${limits.maxActiveJobs}:${limits.maxTaskCount}`;
    const known = this.namespaces.get(accountId);
    if (known?.limits === key) return known.ready;
    const setup = { limits: key, ready: this.setUpNamespace(accountId, limits) };
    this.namespaces.set(accountId, setup);
    setup.ready.catch(() => {
      if (this.namespaces.get(accountId) === setup) this.namespaces.delete(accountId);
    });
    return setup.ready;
  }

  private async setUpNamespace(accountId: string, limits: TierLimits): Promise<string> {
    const input: AccountNamespaceInput = {
      namespace: this.namespaceOf(accountId),
      accountId,
      instance: this.options.instance,
      limits,
      serviceAccountName: this.options.serviceAccountName,
      flinkClusterRole: this.options.flinkClusterRole,
      operatorNamespace: this.options.operatorNamespace,
      egress: this.options.egress,
    };
    await this.serverSideApply(namespaceObject(input));
    for (const object of namespaceContents(input)) await this.serverSideApply(object);
    await this.quotaEnforced(input.namespace, limits);
    this.logger.info({ accountId, namespace: input.namespace, limits }, 'account namespace ready');
    return input.namespace;
  }

  /**
   * The quota admission plugin enforces a ResourceQuota only once the quota controller has
   * filled its `status.hard`; jobs created before that would escape it.
   */
  private async quotaEnforced(namespace: string, limits: TierLimits): Promise<void> {
    const want = String(limits.maxActiveJobs);
    await pollUntil(
      async () => {
        const quota = await this.core.readNamespacedResourceQuota({ name: QUOTA_NAME, namespace });
        return quota.status?.hard?.['count/flinkdeployments.flink.apache.org'] === want || undefined;
      },
      {
        timeoutMs: this.options.quotaReadyTimeoutMs ?? 30 * SECOND,
        intervalMs: { first: 20, max: 500 },
        timeoutError: () => new Error(`the quota of namespace ${namespace} is not enforced yet`),
      },
    );
  }

  private serverSideApply<T extends KubernetesObject>(object: T): Promise<T> {
    return this.objects.patch(object, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
  }

  private async deleteIgnoringAbsent(object: KubernetesObject): Promise<void> {
    try {
      await this.objects.delete(object, undefined, undefined, undefined, undefined, 'Background');
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
}

/** The job's state ConfigMap: the savepoint it last stopped with. */
const stateMapOf = (namespace: string, name: string) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: stateConfigMapNameOf(name), namespace },
});

function withSpecVersion(deployment: FlinkDeploymentObject, version: string): FlinkDeploymentObject {
  const metadata = deployment.metadata!;
  return { ...deployment, metadata: { ...metadata, labels: { ...metadata.labels, [LABEL_SPEC_VERSION]: version } } };
}

const header = (o: KubernetesObject) => ({
  apiVersion: o.apiVersion!,
  kind: o.kind!,
  metadata: { name: o.metadata!.name!, namespace: o.metadata!.namespace! },
});
