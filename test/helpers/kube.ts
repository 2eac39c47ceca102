import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';

const run = promisify(execFile);
const SCRIPT = resolve(import.meta.dirname, '../../scripts/kube-testenv.sh');

/**
 * A real control plane (etcd + kube-apiserver + kube-controller-manager, the Flink
 * operator CRDs installed) of its own, started by scripts/kube-testenv.sh.
 */
export interface KubeTestEnv {
  readonly dir: string;
  readonly apiserverUrl: string;
  readonly adminToken: string;
  /** The apiserver's CA, base64 (as in a kubeconfig). */
  readonly caData: string;
  /** Acts as the `system:masters` admin. */
  readonly admin: KubeConfig;
  /** A KubeConfig for another bearer token (e.g. a ServiceAccount's). */
  kubeConfigFor(token: string): KubeConfig;
  /** Kills the apiserver alone (a crash); etcd and the controllers keep running. */
  stopApiserver(): Promise<void>;
  /** Starts it again with the same flags and waits for /readyz. */
  startApiserver(): Promise<void>;
  stop(): Promise<void>;
}

/** Runs one of the scripts; its stdout, or an error with the end of its stderr. */
export async function runScript(path: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(path, args, { maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const failed = error as Error & { stderr?: string };
    throw new Error(`${basename(path)} ${args[0]} failed: ${failed.stderr?.slice(-6000) ?? failed.message}`);
  }
}

const script = (...args: string[]) => runScript(SCRIPT, args);

/** The KEY=value lines of an env file the scripts write. */
export function parseEnv(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split('\n')
      .map((line) => /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1]!, m[2]!]),
  );
}

export function kubeConfigFor(server: string, caData: string, token: string, user = 'weir-test'): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'testenv', server, caData, skipTLSVerify: false }],
    users: [{ name: user, token }],
    contexts: [{ name: 'testenv', cluster: 'testenv', user }],
    currentContext: 'testenv',
  });
  return kc;
}

/**
 * Runs `<script> start <a new temp dir>` and reads the env file it writes there; the dir
 * is removed again if the start fails.
 */
export async function startInTempDir(path: string, prefix: string): Promise<{ dir: string; env: Record<string, string> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  try {
    await runScript(path, ['start', dir]);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return { dir, env: parseEnv(await readFile(join(dir, 'env'), 'utf8')) };
}

/** Starts a fresh control plane in a temp dir; call `stop()` in afterAll. */
export async function startKubeTestEnv(): Promise<KubeTestEnv> {
  const { dir, env } = await startInTempDir(SCRIPT, 'weir-kube-');
  const apiserverUrl = env.APISERVER_URL!;
  const adminToken = env.ADMIN_TOKEN!;
  const caData = (await readFile(env.CA_FILE!)).toString('base64');
  let stopped = false;
  return {
    dir,
    apiserverUrl,
    adminToken,
    caData,
    admin: kubeConfigFor(apiserverUrl, caData, adminToken, 'admin'),
    kubeConfigFor: (token) => kubeConfigFor(apiserverUrl, caData, token),
    async stopApiserver() {
      await script('stop-apiserver', dir);
    },
    async startApiserver() {
      await script('start-apiserver', dir);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await script('stop', dir);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A TCP proxy in front of the apiserver that can go silent: `freeze()` stops passing
 * bytes on every open connection without closing it (a dead network path, as a watch
 * may meet), while new connections pass again.
 */
export async function startFreezableProxy(target: string): Promise<{ url: string; freeze(): void; close(): Promise<void> }> {
  const { createServer, connect } = await import('node:net');
  const { hostname, port } = new URL(target);
  const open = new Set<import('node:net').Socket>();
  const frozen = new Set<import('node:net').Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(port), hostname);
    for (const socket of [client, upstream]) {
      open.add(socket);
      socket.on('close', () => open.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (data) => (frozen.has(client) ? undefined : upstream.write(data)));
    upstream.on('data', (data) => (frozen.has(upstream) ? undefined : client.write(data)));
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as import('node:net').AddressInfo;
  return {
    url: `https://127.0.0.1:${address.port}`,
    freeze() {
      for (const socket of open) frozen.add(socket);
    },
    async close() {
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A bearer token of a ServiceAccount (TokenRequest), created with its namespace if missing. */
export async function serviceAccountToken(admin: KubeConfig, namespace: string, name: string): Promise<string> {
  const { CoreV1Api } = await import('@kubernetes/client-node');
  const core = admin.makeApiClient(CoreV1Api);
  const ignoreExists = (error: unknown) => {
    if ((error as { code?: number }).code !== 409) throw error;
  };
  await core.createNamespace({ body: { metadata: { name: namespace } } }).catch(ignoreExists);
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } }).catch(ignoreExists);
  const request = await core.createNamespacedServiceAccountToken({
    name,
    namespace,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  return request.status!.token;
}
