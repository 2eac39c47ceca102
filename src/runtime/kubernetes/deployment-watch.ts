import { CustomObjectsApi, Watch, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../../platform/logger.js';
import { SECOND } from '../../platform/time.js';
import { FLINK_GROUP, FLINK_PLURAL, FLINK_VERSION, type FlinkDeploymentObject } from './flink-deployment.js';
import { describe } from './kube-errors.js';

export interface DeploymentWatchOptions {
  readonly kubeConfig: KubeConfig;
  readonly labelSelector: string;
  readonly logger: Logger;
  readonly quietMs: number;
  readonly watchTimeoutSeconds: number;
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
}

type WatchEnd = 'closed' | 'gone' | 'quiet';

const keyOf = (o: FlinkDeploymentObject) => `${o.metadata?.namespace}/${o.metadata?.name}`;

/** Resource versions are opaque, but etcd's are integers; compare them when they are. */
function isOlder(candidate: FlinkDeploymentObject, current: FlinkDeploymentObject | undefined): boolean {
  const a = candidate.metadata?.resourceVersion;
  const b = current?.metadata?.resourceVersion;
  if (!a || !b || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return false;
  return BigInt(a) < BigInt(b);
}

/**
 * An informer over Weir's FlinkDeployments in all namespaces: list, then watch from the
 * list's resource version. client-node's own informer neither restarts after an error
 * nor notices a watch that went silent, so this one does both: any end of a watch leads
 * to a new one (after a backoff with jitter if it failed), a watch with no event for
 * `quietMs` is abandoned, and 410 Gone (the version is too old) means a fresh list.
 */
export class DeploymentWatch {
  private readonly objects = new Map<string, FlinkDeploymentObject>();
  /** uids removed by this process: late events about them must not bring them back. */
  private readonly tombstones = new Set<string>();
  private readonly listeners = new Set<() => void>();
  private readonly closing = new AbortController();
  private readonly api: CustomObjectsApi;
  private resourceVersion: string | undefined;
  private syncedOnce = false;
  private readonly synced: Promise<void>;
  private markSynced!: () => void;
  private loop: Promise<void> | undefined;
  /** Counters for tests and logs. */
  readonly stats = { lists: 0, watches: 0, failures: 0, quiet: 0, gone: 0 };

  constructor(private readonly options: DeploymentWatchOptions) {
    this.api = options.kubeConfig.makeApiClient(CustomObjectsApi);
    this.synced = new Promise((resolve) => (this.markSynced = resolve));
  }

  start(): void {
    this.loop ??= this.run();
  }

  async close(): Promise<void> {
    this.closing.abort();
    await this.loop;
  }

  /** Resolves once the first list has landed; rejects after `timeoutMs`. */
  async whenSynced(timeoutMs: number): Promise<void> {
    if (this.syncedOnce) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`FlinkDeployments not listed within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([this.synced, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  list(): FlinkDeploymentObject[] {
    return [...this.objects.values()];
  }

  get(namespace: string, name: string): FlinkDeploymentObject | undefined {
    return this.objects.get(`${namespace}/${name}`);
  }

  /** Called on every change of the cache. Returns an unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Records what a write returned, so observe() sees it before the watch event arrives. */
  remember(object: FlinkDeploymentObject): void {
    const uid = object.metadata?.uid;
    if (uid && this.tombstones.has(uid)) return;
    if (isOlder(object, this.objects.get(keyOf(object)))) return;
    this.objects.set(keyOf(object), object);
    this.notify();
  }

  /** Drops an object this process deleted. */
  forget(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const uid = this.objects.get(key)?.metadata?.uid;
    if (uid) this.tombstones.add(uid);
    if (this.objects.delete(key)) this.notify();
  }

  private notify(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (error) {
        this.options.logger.warn({ err: error }, 'FlinkDeployment change listener failed');
      }
    }
  }

  private async run(): Promise<void> {
    const log = this.options.logger;
    const initial = this.options.backoffInitialMs ?? 200;
    const max = this.options.backoffMaxMs ?? 5 * SECOND;
    let failures = 0;
    while (!this.closing.signal.aborted) {
      try {
        if (this.resourceVersion === undefined) await this.relist();
        const started = Date.now();
        const end = await this.watchOnce();
        if (end === 'gone') {
          this.stats.gone += 1;
          log.info('FlinkDeployment watch expired (410 Gone); listing again');
          this.resourceVersion = undefined;
        } else if (end === 'quiet') {
          this.stats.quiet += 1;
          log.warn({ quietMs: this.options.quietMs }, 'FlinkDeployment watch went quiet; restarting it');
        }
        // A watch that ends at once, again and again, is a failure in disguise.
        failures = end === 'closed' && Date.now() - started < SECOND ? failures + 1 : 0;
      } catch (error) {
        if (this.closing.signal.aborted) break;
        failures += 1;
        this.stats.failures += 1;
        log.warn({ err: describe(error), failures }, 'FlinkDeployment watch failed; retrying');
      }
      if (failures > 0) {
        const delay = Math.min(max, initial * 2 ** Math.min(failures - 1, 10));
        await this.sleep(delay / 2 + Math.random() * (delay / 2));
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.closing.signal.addEventListener('abort', done, { once: true });
    });
  }

  private async relist(): Promise<void> {
    const fresh = new Map<string, FlinkDeploymentObject>();
    let continueToken: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const page = (await this.api.listClusterCustomObject({
        group: FLINK_GROUP,
        version: FLINK_VERSION,
        plural: FLINK_PLURAL,
        labelSelector: this.options.labelSelector,
        limit: 500,
        _continue: continueToken,
      })) as { items: FlinkDeploymentObject[]; metadata?: { resourceVersion?: string; continue?: string } };
      for (const item of page.items) fresh.set(keyOf(item), item);
      continueToken = page.metadata?.continue || undefined;
      resourceVersion = page.metadata?.resourceVersion;
    } while (continueToken);
    this.objects.clear();
    for (const [key, item] of fresh) {
      if (!this.tombstones.has(item.metadata?.uid ?? '')) this.objects.set(key, item);
    }
    this.tombstones.clear();
    this.resourceVersion = resourceVersion;
    this.stats.lists += 1;
    if (!this.syncedOnce) {
      this.syncedOnce = true;
      this.markSynced();
    }
    this.notify();
  }

  private watchOnce(): Promise<WatchEnd> {
    this.stats.watches += 1;
    this.options.logger.debug({ rv: this.resourceVersion }, "watch start");
    return new Promise<WatchEnd>((resolve, reject) => {
      let settled = false;
      let controller: AbortController | undefined;
      const finish = (settle: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(quietTimer);
        this.closing.signal.removeEventListener('abort', onClosing);
        controller?.abort();
        settle();
      };
      const onClosing = () => finish(() => resolve('closed'));
      const quietTimer = setTimeout(() => finish(() => resolve('quiet')), this.options.quietMs);
      this.closing.signal.addEventListener('abort', onClosing, { once: true });

      const path = `/apis/${FLINK_GROUP}/${FLINK_VERSION}/${FLINK_PLURAL}`;
      const query = {
        labelSelector: this.options.labelSelector,
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: this.options.watchTimeoutSeconds,
      };
      const onEvent = (type: string, object: FlinkDeploymentObject & { code?: number; message?: string }) => {
        if (settled) return;
        quietTimer.refresh();
        this.options.logger.debug({ type, rv: object.metadata?.resourceVersion }, "watch event");
        if (type === 'ERROR') {
          if (object.code === 410) finish(() => resolve('gone'));
          else finish(() => reject(new Error(`watch error ${object.code ?? '?'}: ${object.message ?? 'no message'}`)));
          return;
        }
        const version = object.metadata?.resourceVersion;
        if (version) this.resourceVersion = version;
        if (type === 'BOOKMARK') return;
        const key = keyOf(object);
        const uid = object.metadata?.uid ?? '';
        if (type === 'DELETED') {
          this.tombstones.delete(uid);
          if (this.objects.get(key)?.metadata?.uid === uid || !this.objects.has(key)) this.objects.delete(key);
        } else if (this.tombstones.has(uid) || isOlder(object, this.objects.get(key))) {
          return;
        } else {
          this.objects.set(key, object);
        }
        this.notify();
      };
      new Watch(this.options.kubeConfig)
        .watch(path, query, onEvent, (error: unknown) => finish(() => (error ? reject(error) : resolve('closed'))))
        .then(
          (started) => {
            controller = started;
            if (settled) started.abort();
          },
          (error: unknown) => finish(() => reject(error)),
        );
    });
  }
}
