import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../platform/logger.js';
import { freePort } from '../../platform/net.js';
import { SECOND } from '../../platform/time.js';
import type { FlinkDistribution } from './flink-distribution.js';
import { findMarkedProcesses, hasExited, markerArg, spawnDetached, stopProcess, type RunningProcess } from './processes.js';
import { flinkJson } from '../../flink/flink-rest.js';
import type { PreviewCluster } from '../../preview/preview-backend.js';
import { PREVIEW_CLUSTER_SETTINGS, PREVIEW_GATEWAY_SETTINGS } from '../../preview/preview-sandbox.js';
import { warmUpGateway } from '../../preview/sql-gateway-client.js';
import { pollUntil } from '../../platform/poll.js';

const MEMORY_FILE = fileURLToPath(new URL('../../../flink/memory.json', import.meta.url));

interface RoleMemory {
  readonly jvm: readonly string[];
  readonly flinkConfig?: Readonly<Record<string, string>>;
}
export type Memory = Record<'jobmanager' | 'taskmanager' | 'sqlGateway', RoleMemory>;

/** Where the shared preview cluster answers; kept in `<dir>/cluster.json` for adoption. */
export interface ClusterEndpoints {
  readonly jobManagerUrl: string;
  readonly gatewayUrl: string;
  readonly rpcPort: number;
}

export interface LocalPreviewClusterOptions {
  /** `<dataDir>/preview`: config, logs and per-process temp folders. */
  readonly dir: string;
  readonly distribution: () => Promise<FlinkDistribution>;
  readonly logger: Logger;
  readonly javaBin?: string;
  readonly startTimeoutMs?: number;
}

export class PreviewClusterError extends Error {
  override readonly name = 'PreviewClusterError';
}

/**
 * The session cluster's config.yaml (JobManager, SQL Gateway and the pool's TaskManagers
 * read it): everything on loopback, the sandbox (preview-sandbox.ts) over it.
 */
export function localPreviewConfig(
  ports: { readonly restPort: number; readonly rpcPort: number; readonly gatewayPort: number },
  memory: Memory,
): Record<string, string> {
  return {
    'jobmanager.bind-host': '127.0.0.1',
    'jobmanager.rpc.address': '127.0.0.1',
    'jobmanager.rpc.port': String(ports.rpcPort),
    ...memory.jobmanager.flinkConfig,
    'taskmanager.bind-host': '127.0.0.1',
    'taskmanager.host': '127.0.0.1',
    ...memory.taskmanager.flinkConfig,
    'rest.address': '127.0.0.1',
    'rest.bind-address': '127.0.0.1',
    'rest.port': String(ports.restPort),
    'sql-gateway.endpoint.rest.address': '127.0.0.1',
    'sql-gateway.endpoint.rest.bind-address': '127.0.0.1',
    'sql-gateway.endpoint.rest.port': String(ports.gatewayPort),
    ...PREVIEW_CLUSTER_SETTINGS,
    ...PREVIEW_GATEWAY_SETTINGS,
  };
}

/**
 * The session cluster previews run on: one JobManager and one SQL Gateway, detached
 * JVMs carrying a marker (`weir-preview-jm:<hash>`, `weir-preview-gw:<hash>`, hash of
 * the data folder) so a restarted gateway adopts them instead of starting a second
 * pair. TaskManagers are the pool's (preview-pool.ts); they share this config.
 */
export class LocalPreviewCluster implements PreviewCluster {
  readonly hash: string;
  private readonly memory: Memory;
  private starting: Promise<ClusterEndpoints> | undefined;
  /** The JobManager and SQL Gateway processes, once started or adopted; replaced whole when one is. */
  private processes: { readonly jm: RunningProcess; readonly gw: RunningProcess } | undefined;
  private healing: Promise<ClusterEndpoints> | undefined;
  /** The SQL Gateway's warm-up after a start (tests, benchmarks); never rejects. */
  warmedUp: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly options: LocalPreviewClusterOptions) {
    this.hash = createHash('sha256').update(resolve(options.dir)).digest('hex').slice(0, 12);
    this.memory = JSON.parse(readFileSync(MEMORY_FILE, 'utf8')) as Memory;
  }

  get dir(): string {
    return this.options.dir;
  }

  get confDir(): string {
    return join(this.options.dir, 'conf');
  }

  marker(role: 'jm' | 'gw' | 'tm', suffix = ''): string {
    return `weir-preview-${role}:${this.hash}${suffix ? `:${suffix}` : ''}`;
  }

  /** JVM flags of a pool TaskManager (memory flags must match the config's memory keys). */
  taskManagerJvm(): readonly string[] {
    return this.memory.taskmanager.jvm;
  }

  distribution(): Promise<FlinkDistribution> {
    return this.options.distribution();
  }

  /**
   * Starts the JobManager and the SQL Gateway, or adopts running ones; once. Later calls
   * (several per preview) also bring back a process of the cluster that died: see heal().
   */
  start(): Promise<ClusterEndpoints> {
    // A preview still cleaning up after close() must not bring the cluster back.
    if (this.closed) return Promise.reject(new PreviewClusterError('The preview cluster is closed.'));
    if (this.starting) return this.starting.then((endpoints) => this.heal(endpoints));
    return this.startOnce();
  }

  private startOnce(): Promise<ClusterEndpoints> {
    this.starting = this.startOrAdopt().catch((error) => {
      this.starting = undefined;
      throw error;
    });
    return this.starting;
  }

  /**
   * Brings back a JobManager or SQL Gateway process that died (a crash, the OOM killer,
   * kill -9), checked by pid (`kill -0` and /proc), no request.
   * - The SQL Gateway holds nothing a preview needs once the preview has ended (sessions,
   *   plans), so it is started again alone, on the same port with the same config; the
   *   JobManager and the pool's TaskManagers are untouched.
   * - Without its JobManager the cluster is gone: it is started again whole, on new ports,
   *   and the TaskManagers of the old one are stopped (the pool replaces idle ones it
   *   finds gone; previews that ran on the old cluster end with an error).
   */
  private async heal(endpoints: ClusterEndpoints): Promise<ClusterEndpoints> {
    const pids = this.processes;
    if (this.closed || this.healing || !pids) return this.healing ?? endpoints;
    const [jobManagerGone, gatewayGone] = await Promise.all([hasExited(pids.jm), hasExited(pids.gw)]);
    if (!jobManagerGone && !gatewayGone) return endpoints;
    // Healed by another caller while this one looked: look again at the new processes.
    if (this.processes !== pids) return this.start();
    const log = this.options.logger;
    this.healing ??= (async () => {
      if (jobManagerGone) {
        log.warn({ jm: pids.jm.pid }, 'preview JobManager process is gone; starting the preview cluster again');
        return this.startOnce(); // what is left of the old cluster is stopped first
      }
      const started = Date.now();
      log.warn({ gw: pids.gw.pid, gatewayUrl: endpoints.gatewayUrl }, 'preview SQL Gateway process is gone; starting it again');
      await Promise.all((await findMarkedProcesses(this.marker('gw'))).map((p) => stopProcess(p, 0)));
      this.processes = { ...pids, gw: await this.spawnGateway(await this.options.distribution()) };
      await waitUntil('the preview SQL Gateway', `${endpoints.gatewayUrl}/v2/info`, this.options.startTimeoutMs ?? 120 * SECOND);
      log.info({ gw: this.processes.gw.pid, ms: Date.now() - started }, 'preview SQL Gateway started again');
      // No warm-up: the preview waiting for this gateway warms it, and a warm-up beside it
      // would only take the CPU it needs.
      return endpoints;
    })().finally(() => {
      this.healing = undefined;
    });
    return this.healing;
  }

  private warmUp(endpoints: ClusterEndpoints): void {
    const log = this.options.logger;
    this.warmedUp = warmUpGateway(endpoints.gatewayUrl).then(
      (ms) => log.info({ ms }, 'preview SQL Gateway warmed up'),
      (error) => {
        if (!this.closed) log.warn({ err: error }, 'preview SQL Gateway warm-up failed (the first preview will be slower)');
      },
    );
  }

  private async startOrAdopt(): Promise<ClusterEndpoints> {
    const log = this.options.logger;
    const started = Date.now();
    const saved = await this.savedEndpoints();
    const [runningJm] = await findMarkedProcesses(this.marker('jm'));
    const [runningGw] = await findMarkedProcesses(this.marker('gw'));
    if (saved && runningJm && runningGw && (await answers(`${saved.jobManagerUrl}/overview`)) && (await answers(`${saved.gatewayUrl}/v2/info`))) {
      log.info({ jm: runningJm.pid, gw: runningGw.pid }, 'preview cluster adopted');
      this.processes = { jm: runningJm, gw: runningGw };
      return saved;
    }
    // Half a cluster (or one that does not answer) is replaced whole.
    await this.stopProcesses();

    const distribution = await this.options.distribution();
    const endpoints = await this.writeConfig();
    const jm = await spawnDetached({
      command: this.options.javaBin ?? 'java',
      args: [
        ...(await this.commonJvmArgs(distribution, 'jm')),
        ...this.memory.jobmanager.jvm,
        markerArg(this.marker('jm')),
        '-cp',
        distribution.flinkClasspath,
        'org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint',
        '--configDir',
        this.confDir,
      ],
      logFile: join(this.options.dir, 'jm', 'jobmanager.log'),
    });
    const gw = await this.spawnGateway(distribution);
    this.processes = { jm, gw };
    const timeoutMs = this.options.startTimeoutMs ?? 120 * SECOND;
    await waitUntil('the preview JobManager', `${endpoints.jobManagerUrl}/overview`, timeoutMs);
    await waitUntil('the preview SQL Gateway', `${endpoints.gatewayUrl}/v2/info`, timeoutMs);
    log.info({ jm: jm.pid, gw: gw.pid, ms: Date.now() - started, ...endpoints }, 'preview cluster started');
    this.warmUp(endpoints);
    return endpoints;
  }

  /** The flags every JVM of the cluster gets, with an emptied temp folder of its role. */
  private async commonJvmArgs(distribution: FlinkDistribution, role: 'jm' | 'gw'): Promise<string[]> {
    await rm(join(this.options.dir, role, 'tmp'), { recursive: true, force: true });
    await mkdir(join(this.options.dir, role, 'tmp'), { recursive: true });
    return [
      ...distribution.jvmOptions,
      `-Djava.io.tmpdir=${join(this.options.dir, role, 'tmp')}`,
      `-Dlog4j2.configurationFile=${distribution.log4jConfig}`,
    ];
  }

  /** Starts the SQL Gateway on the written config (its port is in there). */
  private async spawnGateway(distribution: FlinkDistribution): Promise<RunningProcess> {
    return spawnDetached({
      command: this.options.javaBin ?? 'java',
      args: [
        ...(await this.commonJvmArgs(distribution, 'gw')),
        ...this.memory.sqlGateway.jvm,
        markerArg(this.marker('gw')),
        '-cp',
        distribution.flinkClasspath,
        'org.apache.flink.table.gateway.SqlGateway',
      ],
      env: { FLINK_CONF_DIR: this.confDir },
      logFile: join(this.options.dir, 'gw', 'sql-gateway.log'),
    });
  }

  private async savedEndpoints(): Promise<ClusterEndpoints | undefined> {
    try {
      return JSON.parse(await readFile(join(this.options.dir, 'cluster.json'), 'utf8')) as ClusterEndpoints;
    } catch {
      return undefined;
    }
  }

  private async writeConfig(): Promise<ClusterEndpoints> {
    const ports = { restPort: await freePort(), rpcPort: await freePort(), gatewayPort: await freePort() };
    const config = localPreviewConfig(ports, this.memory);
    const { restPort, rpcPort, gatewayPort } = ports;
    await mkdir(this.confDir, { recursive: true });
    const yaml = Object.entries(config)
      .map(([key, value]) => `${key}: ${JSON.stringify(value)}`)
      .join('\n');
    await writeFile(join(this.confDir, 'config.yaml'), `${yaml}\n`);
    const endpoints: ClusterEndpoints = {
      jobManagerUrl: `http://127.0.0.1:${restPort}`,
      gatewayUrl: `http://127.0.0.1:${gatewayPort}`,
      rpcPort,
    };
    await writeFile(join(this.options.dir, 'cluster.json'), JSON.stringify(endpoints));
    return endpoints;
  }

  /** Pids of the cluster's processes by role (for tests and benchmarks). */
  async pids(): Promise<{ jm: number[]; gw: number[]; tm: number[] }> {
    const pidsOf = async (role: 'jm' | 'gw' | 'tm') => (await findMarkedProcesses(this.marker(role))).map((p) => p.pid);
    return { jm: await pidsOf('jm'), gw: await pidsOf('gw'), tm: await pidsOf('tm') };
  }

  /** Stops TaskManagers, then the gateway, then the JobManager. */
  private async stopProcesses(): Promise<void> {
    for (const role of ['tm', 'gw', 'jm'] as const) {
      await Promise.all((await findMarkedProcesses(this.marker(role))).map((p) => stopProcess(p, 10 * SECOND)));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.starting = undefined;
    await this.stopProcesses();
    for (const role of ['jm', 'gw', 'tm']) await rm(join(this.options.dir, role), { recursive: true, force: true });
  }
}

async function answers(url: string): Promise<boolean> {
  try {
    await flinkJson(url, { timeoutMs: 2 * SECOND });
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(what: string, url: string, timeoutMs: number): Promise<void> {
  await pollUntil(async () => (await answers(url)) || undefined, {
    timeoutMs,
    intervalMs: 200,
    timeoutError: () => new PreviewClusterError(`${what} did not answer within ${timeoutMs / SECOND} s (${url})`),
  });
}
