import { CoreV1Api, KubernetesObjectApi, PatchStrategy, setHeaderOptions, type KubeConfig, type KubernetesObject, type V1Pod } from '@kubernetes/client-node';
import type { Logger } from '../../platform/logger.js';
import { SECOND } from '../../platform/time.js';
import { trimSlash } from '../../platform/urls.js';
import type { PreviewCluster, PreviewEndpoints } from '../../preview/preview-backend.js';
import { warmUpGateway } from '../../preview/sql-gateway-client.js';
import { isNotFound } from './kube-errors.js';
import { FIELD_MANAGER } from './kubernetes-options.js';
import {
  FLINK_LABEL_APP,
  FLINK_LABEL_COMPONENT,
  gatewayUrlOf,
  jobManagerUrlOf,
  previewManifests,
  type PreviewManifestOptions,
  type PreviewManifests,
} from './preview-manifests.js';

/** How long the warm-up waits for a SQL Gateway pod that is still starting. */
const WARM_UP_WAIT_MS = 300 * SECOND;

export interface KubernetesPreviewClusterOptions extends Omit<PreviewManifestOptions, 'name'> {
  readonly kubeConfig: KubeConfig;
  /** The FlinkDeployment's name; the SQL Gateway is `<name>-sql-gateway`. Default `weir-preview`. */
  readonly name?: string | undefined;
  /**
   * Where the gateway reaches the JobManager's REST API and the SQL Gateway when it does
   * not run in the cluster (say through `kubectl port-forward`); unset: the in-cluster
   * Service URLs.
   */
  readonly jobManagerUrl?: string | undefined;
  readonly gatewayUrl?: string | undefined;
  readonly fieldManager?: string | undefined;
  readonly logger: Logger;
}

/**
 * On a TaskManager pod leased to a preview: when (ISO 8601). It outlives the gateway and
 * the JobManager's memory of the job (about an hour), so a restarted gateway retires the
 * pod even when nothing else says that it ran a preview.
 */
export const LEASED_ANNOTATION = 'weir.dev/preview-leased-at';

/** `retireTaskManager` or `markLeased` was given a pod that is not one of this cluster's TaskManagers. */
export class NotAPreviewTaskManagerError extends Error {
  override readonly name = 'NotAPreviewTaskManagerError';
}

/**
 * The session cluster previews run on, in the platform namespace: a session-mode
 * FlinkDeployment (no `job`) whose TaskManagers have one slot each, with
 * `slotmanager.redundant-taskmanager-num` idle TaskManagers kept warm by Flink's native
 * resource manager; and a SQL Gateway (Deployment + Service) that submits previews to
 * its JobManager (preview-manifests.ts). A TaskManager runs one preview and is then
 * deleted (`retireTaskManager`); Flink starts a fresh one to keep the pool full.
 *
 * `start()` applies every object once (server-side apply, so a restarted gateway changes
 * nothing) and says where the cluster answers. It does not wait for it: the pool waits
 * for the JobManager, and a preview (30 s at most) for the SQL Gateway to take its
 * session. Once applied, it warms the SQL Gateway up in the background (see
 * warmUpGateway), so the first preview after a gateway start does not pay for the
 * planner's first run.
 *
 * `close()` leaves the cluster running. It is shared platform infrastructure, kept warm
 * across gateway restarts and rolling updates (and by every replica); removing it is an
 * operator's decision (`remove()`), not a side effect of a gateway stopping.
 */
export class KubernetesPreviewCluster implements PreviewCluster {
  readonly name: string;
  readonly namespace: string;
  private readonly manifestOptions: PreviewManifestOptions;
  private readonly objects: KubernetesObjectApi;
  private readonly core: CoreV1Api;
  private readonly fieldManager: string;
  private ensured: Promise<void> | undefined;
  private readonly stop = new AbortController();
  /** The SQL Gateway's warm-up after the first start (tests); never rejects. */
  warmedUp: Promise<void> = Promise.resolve();

  constructor(private readonly options: KubernetesPreviewClusterOptions) {
    if (!Number.isInteger(options.poolSize) || options.poolSize < 0) {
      throw new Error(`preview pool size must be a non-negative integer, not ${options.poolSize}`);
    }
    this.name = options.name ?? 'weir-preview';
    this.namespace = options.namespace;
    this.manifestOptions = { ...options, name: this.name };
    this.fieldManager = options.fieldManager ?? FIELD_MANAGER;
    this.objects = KubernetesObjectApi.makeApiClient(options.kubeConfig);
    this.core = options.kubeConfig.makeApiClient(CoreV1Api);
  }

  /** Every object, in apply order. */
  manifests(): PreviewManifests {
    return previewManifests(this.manifestOptions);
  }

  start(): Promise<PreviewEndpoints> {
    this.ensured ??= this.ensure().then(
      () => this.warmUp(),
      (error: unknown) => {
        this.ensured = undefined;
        throw error;
      },
    );
    return this.ensured.then(() => this.endpoints());
  }

  endpoints(): PreviewEndpoints {
    return {
      jobManagerUrl: trimSlash(this.options.jobManagerUrl ?? jobManagerUrlOf(this.manifestOptions)),
      gatewayUrl: trimSlash(this.options.gatewayUrl ?? gatewayUrlOf(this.manifestOptions)),
    };
  }

  /** Applies every object (server-side apply: a second call changes nothing). */
  async ensure(): Promise<void> {
    const m = this.manifests();
    for (const object of [m.serviceAccount, m.roleBinding, m.flinkDeployment, m.gatewayDeployment, m.gatewayService]) {
      await this.objects.patch(object, undefined, undefined, this.fieldManager, true, PatchStrategy.ServerSideApply);
    }
  }

  private warmUp(): void {
    const log = this.options.logger;
    const { gatewayUrl } = this.endpoints();
    this.warmedUp = warmUpGateway(gatewayUrl, { waitMs: WARM_UP_WAIT_MS, signal: this.stop.signal }).then(
      (ms) => log.info({ ms, gatewayUrl }, 'preview SQL Gateway warmed up'),
      (error: unknown) => {
        if (!this.stop.signal.aborted) log.warn({ err: error, gatewayUrl }, 'preview SQL Gateway warm-up failed (the first preview will be slower)');
      },
    );
  }

  /**
   * Deletes the TaskManager pod that ran a preview, at once (grace period 0): it never runs
   * another job. `podName` is Flink's TaskManager id (on native Kubernetes, the pod name).
   * Refuses any pod that is not one of this cluster's TaskManagers. Returns false if the
   * pod is already gone.
   */
  async retireTaskManager(podName: string): Promise<boolean> {
    const pod = await this.taskManagerPod(podName);
    if (!pod) return false;
    try {
      await this.core.deleteNamespacedPod({
        name: podName,
        namespace: this.namespace,
        gracePeriodSeconds: 0,
        // Exactly the pod checked above, not another one given the same name since.
        body: { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata!.uid! } },
      });
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  /**
   * Annotates a TaskManager pod as leased (LEASED_ANNOTATION). Refuses any pod that is not
   * one of this cluster's TaskManagers; returns false if the pod is already gone.
   */
  async markLeased(podName: string, at = new Date()): Promise<boolean> {
    if (!(await this.taskManagerPod(podName))) return false;
    try {
      await this.core.patchNamespacedPod(
        { name: podName, namespace: this.namespace, body: { metadata: { annotations: { [LEASED_ANNOTATION]: at.toISOString() } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  /** Those of the named pods that are this cluster's TaskManagers and were leased (LEASED_ANNOTATION). */
  async leasedTaskManagers(podNames: readonly string[]): Promise<Set<string>> {
    const pods = await Promise.all(
      podNames.map((name) =>
        this.taskManagerPod(name).catch((error: unknown) => {
          if (error instanceof NotAPreviewTaskManagerError) return undefined;
          throw error;
        }),
      ),
    );
    return new Set(pods.filter((pod) => pod?.metadata?.annotations?.[LEASED_ANNOTATION]).map((pod) => pod!.metadata!.name!));
  }

  /** The pod if it is one of this cluster's TaskManagers; undefined if gone; throws for any other pod. */
  private async taskManagerPod(podName: string): Promise<V1Pod | undefined> {
    let pod: V1Pod;
    try {
      pod = await this.core.readNamespacedPod({ name: podName, namespace: this.namespace });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    const labels = pod.metadata?.labels ?? {};
    if (labels[FLINK_LABEL_APP] !== this.name || labels[FLINK_LABEL_COMPONENT] !== 'taskmanager') {
      throw new NotAPreviewTaskManagerError(`pod ${this.namespace}/${podName} is not a TaskManager of the preview cluster ${this.name}`);
    }
    return pod;
  }

  /**
   * Deletes the session cluster (the operator then removes its JobManager and TaskManagers)
   * and the SQL Gateway. The ServiceAccount and its RoleBinding stay: harmless without the
   * cluster, and deleting them would need more rights than the gateway holds.
   */
  async remove(): Promise<void> {
    const m = this.manifests();
    for (const object of [m.gatewayService, m.gatewayDeployment, m.flinkDeployment]) {
      try {
        await this.objects.delete(header(object), undefined, undefined, undefined, undefined, 'Background');
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
    }
  }

  /** Stops the warm-up if it still runs; the cluster stays (see the class comment). */
  async close(): Promise<void> {
    this.stop.abort();
    await this.warmedUp;
  }
}

const header = (o: KubernetesObject): KubernetesObject => ({
  apiVersion: o.apiVersion!,
  kind: o.kind!,
  metadata: { name: o.metadata!.name!, namespace: o.metadata!.namespace! },
});
