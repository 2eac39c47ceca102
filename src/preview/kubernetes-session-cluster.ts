import type { Logger } from '../platform/logger.js';
import { SECOND } from '../platform/time.js';
import type { KubernetesPreviewCluster } from '../runtime/kubernetes/preview-cluster.js';
import type { PreviewCluster, PreviewEndpoints } from './preview-backend.js';
import { warmUpGateway } from './sql-gateway-client.js';

/** How long the warm-up waits for a SQL Gateway pod that is still starting. */
const WARM_UP_WAIT_MS = 300 * SECOND;

export interface KubernetesSessionClusterOptions {
  readonly cluster: KubernetesPreviewCluster;
  /**
   * Where the gateway reaches the JobManager's REST API and the SQL Gateway when it does
   * not run in the cluster (say through `kubectl port-forward`); unset: the in-cluster
   * Service URLs.
   */
  readonly jobManagerUrl?: string | undefined;
  readonly gatewayUrl?: string | undefined;
  readonly logger: Logger;
}

/**
 * The preview session cluster on Kubernetes as the preview service sees it: `start()`
 * applies the FlinkDeployment and the SQL Gateway once (server-side apply, so a restarted
 * gateway changes nothing) and says where they answer. It does not wait for them: the
 * pool waits for the JobManager, and a preview (30 s at most) for the SQL Gateway to take
 * its session. Once applied, it warms the SQL Gateway up in the background (see
 * warmUpGateway), so the first preview after a gateway start does not pay for the
 * planner's first run.
 *
 * `close()` leaves the cluster running. It is shared platform infrastructure, kept warm
 * across gateway restarts and rolling updates (and by every replica); removing it is an
 * operator's decision (`KubernetesPreviewCluster.remove()`), not a side effect of a
 * gateway stopping.
 */
export class KubernetesSessionCluster implements PreviewCluster {
  private ensured: Promise<void> | undefined;
  private readonly stop = new AbortController();
  /** The SQL Gateway's warm-up after the first start (tests); never rejects. */
  warmedUp: Promise<void> = Promise.resolve();

  constructor(private readonly options: KubernetesSessionClusterOptions) {}

  start(): Promise<PreviewEndpoints> {
    this.ensured ??= this.options.cluster.ensure().then(
      () => this.warmUp(),
      (error: unknown) => {
        this.ensured = undefined;
        throw error;
      },
    );
    return this.ensured.then(() => this.endpoints());
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

  endpoints(): PreviewEndpoints {
    const { cluster } = this.options;
    return {
      jobManagerUrl: trimSlash(this.options.jobManagerUrl ?? cluster.jobManagerUrl()),
      gatewayUrl: trimSlash(this.options.gatewayUrl ?? cluster.gatewayUrl()),
    };
  }

  /** Deletes a TaskManager pod of this cluster (see KubernetesPreviewCluster.retireTaskManager). */
  retireTaskManager(podName: string): Promise<boolean> {
    return this.options.cluster.retireTaskManager(podName);
  }

  /** Records on a TaskManager pod that it was leased (see KubernetesPreviewCluster.markLeased). */
  markLeased(podName: string): Promise<boolean> {
    return this.options.cluster.markLeased(podName);
  }

  /** Those of the named TaskManager pods that were ever leased. */
  leasedTaskManagers(podNames: readonly string[]): Promise<Set<string>> {
    return this.options.cluster.leasedTaskManagers(podNames);
  }

  /** Stops the warm-up if it still runs; the cluster stays (see the class comment). */
  async close(): Promise<void> {
    this.stop.abort();
    await this.warmedUp;
  }
}

const trimSlash = (url: string) => url.replace(/\/+$/, '');
