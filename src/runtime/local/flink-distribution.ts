import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../platform/logger.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));

/** Flink and Kafka as jars from Maven Central, assembled by scripts/flink-setup.sh. */
export interface FlinkDistribution {
  readonly flinkClasspath: string;
  readonly kafkaClasspath: string;
  readonly runnerJar: string;
  /** The Java 17 --add-opens/--add-exports flags every Flink JVM needs. */
  readonly jvmOptions: readonly string[];
  /** log4j 2 configuration for every JVM (logs to stderr). */
  readonly log4jConfig: string;
  readonly versions: Record<string, string>;
}

export class FlinkSetupError extends Error {
  override readonly name = 'FlinkSetupError';
}

/**
 * Runs the cached setup once per process: the first call on a new machine resolves
 * the jars with Maven (minutes, with progress in the log); later calls take < 1 s.
 */
export function flinkDistribution(options: { cacheDir?: string; logger: Logger }): () => Promise<FlinkDistribution> {
  let pending: Promise<FlinkDistribution> | undefined;
  return () => {
    pending ??= load(options).catch((error) => {
      pending = undefined; // let a later call try again
      throw error;
    });
    return pending;
  };
}

async function load(options: { cacheDir?: string; logger: Logger }): Promise<FlinkDistribution> {
  const log = options.logger.child({ component: 'flink-setup' });
  const started = Date.now();
  const dir = await new Promise<string>((resolve, reject) => {
    const child = spawn('bash', [join(REPO, 'scripts/flink-setup.sh')], {
      env: { ...process.env, ...(options.cacheDir ? { WEIR_CACHE_DIR: options.cacheDir } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let tail: string[] = [];
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      for (const line of chunk.split('\n').filter(Boolean)) {
        log.info(line);
        tail = [...tail.slice(-20), line];
      }
    });
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolve(stdout.trim().split('\n').pop()!);
      else reject(new FlinkSetupError(`scripts/flink-setup.sh failed (exit ${code}):\n${tail.join('\n')}`));
    });
  });
  const read = (file: string) => readFile(join(dir, file), 'utf8');
  const distribution: FlinkDistribution = {
    flinkClasspath: (await read('flink.classpath')).trim(),
    kafkaClasspath: (await read('kafka.classpath')).trim(),
    runnerJar: join(dir, 'sql-runner.jar'),
    jvmOptions: (await readFile(join(REPO, 'flink/jvm-options.txt'), 'utf8'))
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#')),
    log4jConfig: join(REPO, 'flink/conf/log4j2-console.properties'),
    versions: JSON.parse(await read('versions.json')),
  };
  log.info({ ms: Date.now() - started, versions: distribution.versions }, 'Flink distribution ready');
  return distribution;
}
