import type { KubernetesPreviewCluster } from '../runtime/kubernetes/preview-cluster.js';
import type { PreviewCluster, PreviewEndpoints } from './preview-backend.js';

export interface KubernetesSessionClusterOptions {
  readonly cluster: KubernetesPreviewCluster;
  /**
   * Where the gateway reaches the JobManager's REST API and the SQL Gateway when it does
   * not run in the cluster (say through `kubectl port-forward`); unset: the in-cluster
   * Service URLs.
   */
  readonly jobManagerUrl?: string | undefined;
  readonly gatewayUrl?: string | undefined;
}

/**
 * The preview session cluster on Kubernetes as the preview service sees it: `start()`
 * applies the FlinkDeployment and the SQL Gateway once (server-side apply, so a restarted
 * gateway changes nothing) and says where they answer. It does not wait for them: the
 * pool waits for the JobManager, and a preview (30 s at most) for the SQL Gateway to take
 * its session.
 *
 * `close()` leaves the cluster running. It is shared platform infrastructure, kept warm
 * across gateway restarts and rolling updates (and by every replica); removing it is an
 * operator's decision (`KubernetesPreviewCluster.remove()`), not a side effect of a
 * gateway stopping.
 */
export class KubernetesSessionCluster implements PreviewCluster {
  private ensured: Promise<void> | undefined;

  constructor(private readonly options: KubernetesSessionClusterOptions) {}

  start(): Promise<PreviewEndpoints> {
    this.ensured ??= this.options.cluster.ensure().catch((error: unknown) => {
      this.ensured = undefined;
      throw error;
    });
    return this.ensured.then(() => this.endpoints());
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

  async close(): Promise<void> {
    // Nothing to stop here: see the class comment.
  }
}

const trimSlash = (url: string) => url.replace(/\/+$/, '');
