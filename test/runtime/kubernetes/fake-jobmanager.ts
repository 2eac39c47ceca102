import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CoreV1Api } from '@kubernetes/client-node';

export interface FakeJob {
  status: 'RUNNING' | 'FINISHED' | 'CANCELED' | 'FAILED' | 'CREATED';
  /** The TaskManagers (pod names) its one vertex runs or ran on. */
  taskManagers: string[];
}

/**
 * The part of a session cluster's JobManager REST API the Kubernetes preview pool reads,
 * over real pods: `GET /taskmanagers` lists the TaskManager pods of cluster `name` as
 * the apiserver has them at that moment (a deleted pod is gone from the next answer, as
 * Flink's resource manager drops a TaskManager whose pod is deleted), each with one slot;
 * `busy` ones have it taken. `/jobs`, `/jobs/:id` and `/jobs/:id/vertices/:vid/taskmanagers`
 * answer from `jobs`.
 */
export class FakeJobManager {
  readonly busy = new Set<string>();
  readonly jobs = new Map<string, FakeJob>();
  /** Listed (with a free slot) after their pod is gone: a JobManager that has not noticed. */
  readonly lingering = new Set<string>();
  requests = 0;
  private server: Server | undefined;
  url = '';

  constructor(
    private readonly core: CoreV1Api,
    private readonly namespace: string,
    private readonly name: string,
  ) {}

  async start(): Promise<this> {
    this.server = createServer((request, response) => {
      this.requests += 1;
      this.answer(request.url ?? '/').then(
        ([status, body]) => {
          response.writeHead(status, { 'content-type': 'application/json' });
          response.end(JSON.stringify(body));
        },
        (error: unknown) => {
          response.writeHead(500, { 'content-type': 'application/json' });
          response.end(JSON.stringify({ errors: [String(error)] }));
        },
      );
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  async pods(): Promise<string[]> {
    const list = await this.core.listNamespacedPod({
      namespace: this.namespace,
      labelSelector: `app=${this.name},component=taskmanager`,
    });
    return list.items.filter((pod) => !pod.metadata?.deletionTimestamp).map((pod) => pod.metadata!.name!);
  }

  private async answer(path: string): Promise<[number, unknown]> {
    if (path === '/taskmanagers') {
      const ids = new Set([...(await this.pods()), ...this.lingering]);
      return [
        200,
        {
          taskmanagers: [...ids].sort().map((id) => ({
            id,
            path: `akka.tcp://flink@${id}:6122/user/rpc/taskmanager_0`,
            dataPort: 6121,
            slotsNumber: 1,
            freeSlots: this.busy.has(id) ? 0 : 1,
          })),
        },
      ];
    }
    if (path === '/jobs') {
      return [200, { jobs: [...this.jobs].map(([id, job]) => ({ id, status: job.status })) }];
    }
    const detail = /^\/jobs\/([^/]+)$/.exec(path);
    const job = detail ? this.jobs.get(detail[1]!) : undefined;
    if (detail && job) return [200, { jid: detail[1], state: job.status, vertices: [{ id: 'v1', status: job.status }] }];
    const where = /^\/jobs\/([^/]+)\/vertices\/v1\/taskmanagers$/.exec(path);
    const placed = where ? this.jobs.get(where[1]!) : undefined;
    if (where && placed) {
      return [200, { id: 'v1', taskmanagers: placed.taskManagers.map((id) => ({ 'taskmanager-id': id, status: placed.status })) }];
    }
    return [404, { errors: ['Not found: ' + path] }];
  }
}
