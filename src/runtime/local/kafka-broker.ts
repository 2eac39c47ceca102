import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { Admin } from '@platformatic/kafka';
import type { Logger } from '../../platform/logger.js';
import { freePort } from '../../platform/net.js';
import { clientOptions, jaasQuote, type KafkaEndpoint, type SaslCredentials } from '../../streams/kafka-endpoint.js';
import { findMarkedProcesses, isRunning, markerArg, scopeOf, spawnDetached, stopProcess, type RunningProcess } from './processes.js';
import { pollUntil } from '../../platform/poll.js';
import { SECOND } from '../../platform/time.js';

/**
 * The one Kafka broker of a local gateway: Apache Kafka 4.x in KRaft mode (broker and
 * controller in one JVM), started on first use and stopped with the gateway. It runs
 * detached and carries a marker, so a restarted gateway adopts it instead of starting a
 * second one; its port is chosen once and kept in `<dataDir>/kafka/port`, so running
 * Flink jobs keep their bootstrap servers across gateway restarts.
 *
 * Nobody gets in without credentials: both listeners take SASL only, and the broker
 * authorizes every request (`StandardAuthorizer`, deny when no ACL matches). The gateway
 * and the broker itself are `weir-admin` (PLAIN, a super user, password generated once in
 * `<dataDir>/kafka/admin-password`); jobs and previews are SCRAM users with ACLs on their
 * own account's topics (streams/kafka-principals.ts).
 */
export interface KafkaBrokerOptions {
  /** The gateway's data dir; the broker keeps everything under `<dataDir>/kafka/`. */
  readonly dataDir: string;
  /** Resolved on first use only (it may run Maven). */
  readonly kafkaClasspath: () => Promise<string>;
  readonly logger: Logger;
  /**
   * The address clients connect to: the client listener binds to it and advertises it.
   * Default 127.0.0.1; a local Kubernetes node's IP makes the broker reachable from its
   * pods. The controller listener stays on 127.0.0.1.
   */
  readonly host?: string;
  readonly javaBin?: string;
  readonly heapMb?: number;
  /** log4j 2 config for the JVM; default `flink/conf/log4j2-console.properties`. */
  readonly log4jConfig?: string;
  /** How long a start may take before it fails with the log's tail. */
  readonly startTimeoutMs?: number;
  /** SIGTERM → SIGKILL grace on stop. */
  readonly stopGraceMs?: number;
}

export class KafkaBrokerError extends Error {
  override readonly name = 'KafkaBrokerError';
}

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const MAIN_CLASS = 'kafka.Kafka';
const STORAGE_TOOL = 'kafka.tools.StorageTool';
export const ADMIN_USER = 'weir-admin';
/** In server.properties of brokers started with authentication; older ones lack it. */
const AUTHENTICATED_MARK = 'sasl.enabled.mechanisms=';
/** Largest record batch the broker accepts; a publish of 1 MiB of records plus overhead fits. */
export const MAX_BATCH_BYTES = 4 * 1024 * 1024;

export class KafkaBroker {
  readonly #options: KafkaBrokerOptions;
  readonly #log: Logger;
  readonly #dir: string;
  readonly #marker: string;
  #process: RunningProcess | undefined;
  #port: number | undefined;
  #admin: SaslCredentials | undefined;
  #starting: Promise<KafkaEndpoint> | undefined;

  constructor(options: KafkaBrokerOptions) {
    this.#options = options;
    this.#log = options.logger.child({ component: 'kafka-broker' });
    this.#dir = join(resolve(options.dataDir), 'kafka');
    this.#marker = `weir-broker:${scopeOf(options.dataDir)}`;
  }

  /** The broker's process id, once started or adopted. */
  pid(): number | undefined {
    return this.#process?.pid;
  }

  /** Where the broker listens (clients and controller), without starting it; empty before its first start. */
  async listenerAddresses(): Promise<string[]> {
    const ports = await Promise.all([this.#persistedPort('port'), this.#persistedPort('controller-port')]);
    return ports.filter((port): port is number => port !== undefined).map((port) => this.#bootstrap(port));
  }

  /** The marker on the JVM's command line (`-Dweir.process=<marker>`). */
  get marker(): string {
    return this.#marker;
  }

  /** `<host>:<port>` of a broker that answers, as the admin; starts or adopts one if needed. */
  async ensureStarted(): Promise<KafkaEndpoint> {
    if (this.#process && this.#port !== undefined && this.#admin && !this.#starting && (await isRunning(this.#process))) {
      return this.#endpoint(this.#port, this.#admin);
    }
    this.#starting ??= this.#start().finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  /** Stops the broker of this data dir (started or adopted), gracefully; waits for its exit. */
  async stop(): Promise<void> {
    await this.#starting?.catch(() => undefined);
    // Only processes that carry the marker: a pid remembered from before may have been
    // stopped by another gateway and reused by the system since.
    const brokers = await findMarkedProcesses(this.#marker);
    this.#process = undefined;
    for (const broker of brokers) {
      const started = Date.now();
      this.#log.info({ pid: broker.pid }, 'stopping Kafka broker…');
      await stopProcess(broker, this.#options.stopGraceMs ?? 30 * SECOND);
      this.#log.info({ pid: broker.pid, ms: Date.now() - started }, 'Kafka broker stopped');
    }
  }

  /** The same object while the broker stays the same, so clients can tell when it changed. */
  #endpoint(port: number, admin: SaslCredentials): KafkaEndpoint {
    if (this.#lastEndpoint?.bootstrapServers !== this.#bootstrap(port) || this.#lastEndpoint.admin !== admin) {
      this.#lastEndpoint = { bootstrapServers: this.#bootstrap(port), securityProtocol: 'SASL_PLAINTEXT', admin };
    }
    return this.#lastEndpoint;
  }

  #lastEndpoint: KafkaEndpoint | undefined;

  async #start(): Promise<KafkaEndpoint> {
    const started = Date.now();
    const admin = await this.#adminCredentials();
    const [running, ...extra] = await findMarkedProcesses(this.#marker);
    if (extra.length > 0) {
      this.#log.warn({ pids: extra.map((p) => p.pid) }, 'more than one Kafka broker for this data dir; stopping the extra ones');
      await Promise.all(extra.map((p) => stopProcess(p, this.#options.stopGraceMs ?? 30 * SECOND)));
    }
    const port = await this.#persistedPort('port');
    const mismatch = port === undefined ? 'no port file' : await this.#startedOtherwise();
    if (running && port !== undefined && !mismatch) {
      this.#log.info({ pid: running.pid, port }, 'adopting running Kafka broker');
      this.#process = running;
      this.#port = port;
      this.#admin = admin;
      await this.#waitUntilReady(running, port, started, admin);
      return this.#endpoint(port, admin);
    }
    if (running) {
      // A broker without its port file cannot be told where it listens, one that an older
      // Weir started without authentication lets anyone in, and one on another address is
      // not where clients are told to go: replace it.
      this.#log.warn(
        { pid: running.pid, reason: mismatch },
        'restarting the Kafka broker of this data dir',
      );
      await stopProcess(running, this.#options.stopGraceMs ?? 30 * SECOND);
    }

    this.#log.info({ dataDir: this.#dir }, 'starting Kafka broker…');
    const classpath = await this.#options.kafkaClasspath();
    const brokerPort = port ?? (await this.#choosePort('port'));
    const controllerPort = (await this.#persistedPort('controller-port')) ?? (await this.#choosePort('controller-port'));
    const properties = join(this.#dir, 'server.properties');
    // It holds the admin password: this user only.
    await writeFile(properties, serverProperties({ host: this.#host, brokerPort, controllerPort, logDir: join(this.#dir, 'data'), admin }), { mode: 0o600 });
    await chmod(properties, 0o600);
    if (!existsSync(join(this.#dir, 'data', 'meta.properties'))) {
      await this.#format(classpath, properties);
    }
    const logFile = join(this.#dir, 'broker.log');
    if (existsSync(logFile)) await rename(logFile, `${logFile}.1`);
    const broker = await spawnDetached({
      command: this.#javaBin,
      args: [...this.#jvmFlags(), markerArg(this.#marker), MAIN_CLASS, properties],
      env: { CLASSPATH: classpath, MALLOC_ARENA_MAX: '2' },
      cwd: this.#dir,
      logFile,
    });
    this.#process = broker;
    this.#port = brokerPort;
    this.#admin = admin;
    try {
      await this.#waitUntilReady(broker, brokerPort, started, admin);
    } catch (error) {
      this.#process = undefined;
      await stopProcess(broker, 5 * SECOND).catch(() => undefined);
      throw error;
    }
    return this.#endpoint(brokerPort, admin);
  }

  /** The admin's password, generated once and kept (mode 0600) beside the broker's data. */
  async #adminCredentials(): Promise<SaslCredentials> {
    if (this.#admin) return this.#admin;
    const file = join(this.#dir, 'admin-password');
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const created = randomBytes(32).toString('base64url');
    await writeFile(file, `${created}\n`, { mode: 0o600, flag: 'wx' }).catch((error: NodeJS.ErrnoException) => {
      // Kept from an earlier start (or another process won the race): use that one.
      if (error.code !== 'EEXIST') throw error;
    });
    const password = (await readFile(file, 'utf8')).trim();
    return { mechanism: 'PLAIN', username: ADMIN_USER, password };
  }

  /**
   * Why the running broker's server.properties (written at its start) is not what this
   * broker would be started with, or undefined when it is: without SASL, or on another host.
   */
  async #startedOtherwise(): Promise<string | undefined> {
    const properties = await readFile(join(this.#dir, 'server.properties'), 'utf8').catch(() => '');
    if (!properties.includes(AUTHENTICATED_MARK)) return 'no authentication';
    if (!properties.includes(`advertised.listeners=CLIENT://${this.#host}:`)) return `not listening on ${this.#host}`;
    return undefined;
  }

  get #host(): string {
    return this.#options.host ?? '127.0.0.1';
  }

  #bootstrap(port: number): string {
    return `${this.#host}:${port}`;
  }

  get #javaBin(): string {
    return this.#options.javaBin ?? 'java';
  }

  get #log4jConfig(): string {
    return this.#options.log4jConfig ?? join(REPO, 'flink/conf/log4j2-console.properties');
  }

  /**
   * A small heap and the flags that keep a mostly idle JVM's resident memory low: the
   * serial collector (no G1 remembered sets), C1 only (a smaller code cache, one
   * compiler thread), capped metaspace and direct memory, and few malloc arenas (env).
   */
  #jvmFlags(): string[] {
    const heapMb = this.#options.heapMb ?? 256;
    return [
      `-Xms${Math.min(64, heapMb)}m`,
      `-Xmx${heapMb}m`,
      '-XX:+UseSerialGC',
      '-XX:MaxDirectMemorySize=64m',
      '-XX:MaxMetaspaceSize=128m',
      '-XX:ReservedCodeCacheSize=48m',
      '-XX:TieredStopAtLevel=1',
      '-XX:CICompilerCount=1',
      '-Xss512k',
      '-XX:-UsePerfData',
      '-Djava.awt.headless=true',
      `-Dlog4j2.configurationFile=${this.#log4jConfig}`,
    ];
  }

  async #format(classpath: string, properties: string): Promise<void> {
    const started = Date.now();
    const args = [
      '-Xmx128m',
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      `-Dlog4j2.configurationFile=${this.#log4jConfig}`,
      '-Dweir.log.level=WARN',
      STORAGE_TOOL,
      'format',
      '--cluster-id',
      clusterId(),
      '--config',
      properties,
      // One node that is the whole dynamic controller quorum (KIP-853).
      '--standalone',
      '--ignore-formatted',
    ];
    const { code, output } = await run(this.#javaBin, args, { CLASSPATH: classpath });
    if (code !== 0) {
      throw new KafkaBrokerError(`formatting the Kafka storage failed (exit ${code}):\n${tail(output, 30)}`);
    }
    this.#log.info({ ms: Date.now() - started }, 'Kafka storage formatted');
  }

  async #waitUntilReady(broker: RunningProcess, port: number, started: number, admin: SaslCredentials): Promise<void> {
    const { pid } = broker;
    const timeoutMs = this.#options.startTimeoutMs ?? 90 * SECOND;
    let lastError: unknown;
    await pollUntil(
      async () => {
        if (!(await isRunning(broker))) {
          throw new KafkaBrokerError(`the Kafka broker (pid ${pid}) exited while starting. Its log ends:\n${await this.#logTail()}`);
        }
        return answersMetadata(this.#bootstrap(port), admin).then(
          (answers) => answers || undefined,
          (error: unknown) => void (lastError = error),
        );
      },
      {
        timeoutMs: started + timeoutMs - Date.now(),
        intervalMs: 200,
        timeoutError: async () => {
          const reason = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
          return new KafkaBrokerError(
            `the Kafka broker (pid ${pid}) did not answer on ${this.#bootstrap(port)} within ${timeoutMs} ms${reason}. Its log ends:\n${await this.#logTail()}`,
          );
        },
      },
    );
    this.#log.info({ pid, port, ms: Date.now() - started }, `Kafka broker ready in ${Date.now() - started} ms`);
  }

  async #logTail(): Promise<string> {
    try {
      return tail(await readFile(join(this.#dir, 'broker.log'), 'utf8'), 40);
    } catch {
      return '(no log)';
    }
  }

  async #persistedPort(file: string): Promise<number | undefined> {
    try {
      const port = Number((await readFile(join(this.#dir, file), 'utf8')).trim());
      return Number.isInteger(port) && port > 0 && port < 65536 ? port : undefined;
    } catch {
      return undefined;
    }
  }

  /** A port free now, written down so that it stays the broker's for good. */
  async #choosePort(file: string): Promise<number> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const port = await freePort();
    await writeFile(join(this.#dir, file), `${port}\n`);
    return port;
  }
}

function serverProperties(options: { host: string; brokerPort: number; controllerPort: number; logDir: string; admin: SaslCredentials }): string {
  const { host, brokerPort, controllerPort, logDir, admin } = options;
  // PLAIN with one user in the JAAS line: the admin, as the broker's client side (to the
  // controller, to itself) and as the list of accepted PLAIN users (`user_<name>`).
  const plainJaas =
    `org.apache.kafka.common.security.plain.PlainLoginModule required username=${jaasQuote(admin.username)} ` +
    `password=${jaasQuote(admin.password)} user_${admin.username}=${jaasQuote(admin.password)};`;
  const lines = {
    'process.roles': 'broker,controller',
    'node.id': '1',
    'controller.quorum.bootstrap.servers': `127.0.0.1:${controllerPort}`,
    listeners: `CLIENT://${host}:${brokerPort},CONTROLLER://127.0.0.1:${controllerPort}`,
    'advertised.listeners': `CLIENT://${host}:${brokerPort}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'CLIENT',
    'listener.security.protocol.map': 'CONTROLLER:SASL_PLAINTEXT,CLIENT:SASL_PLAINTEXT',
    // Tenants' jobs and previews authenticate with SCRAM (users made at run time, kept in
    // the metadata log); the admin with PLAIN from the JAAS line, which needs no metadata
    // and so also works between broker and controller while the log is being read.
    'sasl.enabled.mechanisms': 'PLAIN,SCRAM-SHA-512',
    'sasl.mechanism.inter.broker.protocol': 'PLAIN',
    'sasl.mechanism.controller.protocol': 'PLAIN',
    'listener.name.client.sasl.enabled.mechanisms': 'PLAIN,SCRAM-SHA-512',
    'listener.name.client.plain.sasl.jaas.config': plainJaas,
    'listener.name.client.scram-sha-512.sasl.jaas.config': 'org.apache.kafka.common.security.scram.ScramLoginModule required;',
    'listener.name.controller.sasl.enabled.mechanisms': 'PLAIN',
    'listener.name.controller.plain.sasl.jaas.config': plainJaas,
    'authorizer.class.name': 'org.apache.kafka.metadata.authorizer.StandardAuthorizer',
    'allow.everyone.if.no.acl.found': 'false',
    'super.users': `User:${admin.username}`,
    'log.dirs': logDir,
    'num.partitions': '1',
    'auto.create.topics.enable': 'false',
    'offsets.topic.replication.factor': '1',
    // 50 partitions each by default: files, index maps and start-up time for nothing here.
    'offsets.topic.num.partitions': '1',
    'transaction.state.log.replication.factor': '1',
    'transaction.state.log.min.isr': '1',
    'transaction.state.log.num.partitions': '1',
    'share.coordinator.state.topic.replication.factor': '1',
    'share.coordinator.state.topic.min.isr': '1',
    'share.coordinator.state.topic.num.partitions': '1',
    'group.initial.rebalance.delay.ms': '0',
    'message.max.bytes': String(MAX_BATCH_BYTES),
    // Few threads: one machine, light load; each thread costs a stack and malloc arenas.
    'num.network.threads': '2',
    'num.io.threads': '2',
    'background.threads': '2',
    'num.recovery.threads.per.data.dir': '1',
    'log.cleaner.threads': '1',
    // The cleaner (compacted topics such as __consumer_offsets) takes 128 MiB of heap by default.
    'log.cleaner.dedupe.buffer.size': String(8 * 1024 * 1024),
  };
  return `# Written by Weir on every broker start.\n${Object.entries(lines)
    .map(([key, value]) => `${key}=${value}`)
    .join('\n')}\n`;
}

/** A Kafka cluster id: 16 random bytes, URL-safe base64, not starting with '-' (CLI-safe). */
function clusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** True once the broker answers a metadata request and lists itself. */
async function answersMetadata(bootstrapServers: string, credentials: SaslCredentials): Promise<boolean> {
  const admin = new Admin({
    clientId: 'weir-broker-probe',
    ...clientOptions({ bootstrapServers, securityProtocol: 'SASL_PLAINTEXT', admin: credentials }),
    connectTimeout: 1000,
    requestTimeout: 2000,
    retries: 0,
  });
  try {
    const metadata = await admin.metadata({ topics: [] });
    return metadata.brokers.size > 0;
  } finally {
    await admin.close().catch(() => undefined);
  }
}

function run(command: string, args: readonly string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.once('error', reject);
    child.once('close', (code) => resolveRun({ code, output }));
  });
}

function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
