/**
 * The SQL runner jar as a Java agent (dev.weir.runner.PreviewWarmupAgent): how a preview
 * TaskManager pod on Kubernetes is pre-warmed, where Flink picks the main class
 * (`env.java.opts.taskmanager: -javaagent:/opt/weir/sql-runner.jar`, preview-manifests.ts).
 * A real JVM on the real Flink classpath: the agent loads every listed class before main.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/platform/logger.js';
import { flinkDistribution, type FlinkDistribution } from '../../src/runtime/local/flink-distribution.js';

const run = promisify(execFile);
let flink: FlinkDistribution;

beforeAll(async () => {
  flink = await flinkDistribution({ logger: createLogger('silent') })();
}, 600_000);

/** Runs Flink's BashJavaUtils (a main that ends at once without arguments) with the given JVM flags; its stderr. */
async function stderrOf(flags: string[]): Promise<string> {
  const main = 'org.apache.flink.runtime.util.bash.BashJavaUtils';
  const result = await run('java', [...flink.jvmOptions, ...flags, '-cp', flink.flinkClasspath, main]).catch(
    (error: { stderr?: string }) => ({ stderr: error.stderr ?? '' }),
  );
  return result.stderr;
}

describe('the preview warm-up agent', () => {
  it('loads the classes a preview needs, all of them present, before the main class runs', async () => {
    const stderr = await stderrOf([`-javaagent:${flink.runnerJar}`]);
    const line = /WEIR_WARMUP loaded=(\d+) missing=(\d+) ms=(\d+)/.exec(stderr);
    expect(line, stderr).not.toBeNull();
    expect(Number(line![2]), line![0]).toBe(0);
    expect(Number(line![1]), line![0]).toBeGreaterThan(1000);
    // Before main: the line comes first.
    expect(stderr.indexOf('WEIR_WARMUP')).toBe(0);
  }, 60_000);

  it('does nothing without the agent flag', async () => {
    expect(await stderrOf([])).not.toContain('WEIR_WARMUP');
  }, 60_000);
});
