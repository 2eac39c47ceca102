import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseEnv, runScript } from './kube.js';

const SCRIPT = resolve(import.meta.dirname, '../../scripts/s3proxy.sh');

/** An S3-compatible store (scripts/s3proxy.sh) on a folder of its own, with the bucket `weir-flink`. */
export interface ObjectStore {
  readonly endpoint: string;
  readonly accessKey: string;
  readonly secretKey: string;
  readonly bucket: string;
  /** What Flink's S3 plugin needs to reach it (WEIR_K8S_FLINK_CONFIG). */
  readonly flinkConfig: Record<string, string>;
  readonly dataDir: string;
  stop(): Promise<void>;
}

/** Serves on `host` (say the node IP, for pods); call `stop()` in afterAll. */
export async function startObjectStore(host: string): Promise<ObjectStore> {
  const dir = await mkdtemp(join(tmpdir(), 'weir-s3-'));
  try {
    const env = parseEnv(await runScript(SCRIPT, ['start', dir, host]));
    const endpoint = env.S3_ENDPOINT!;
    const accessKey = env.S3_ACCESS_KEY!;
    const secretKey = env.S3_SECRET_KEY!;
    let stopped = false;
    return {
      endpoint,
      accessKey,
      secretKey,
      bucket: env.S3_BUCKET!,
      dataDir: join(dir, 'data'),
      flinkConfig: { 's3.endpoint': endpoint, 's3.path.style.access': 'true', 's3.access-key': accessKey, 's3.secret-key': secretKey },
      async stop() {
        if (stopped) return;
        stopped = true;
        await runScript(SCRIPT, ['stop', dir]);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
