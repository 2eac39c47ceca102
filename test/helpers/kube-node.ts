import { execFile, spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { KubeConfig } from '@kubernetes/client-node';
import { kubeConfigFor, runScript, startInTempDir } from './kube.js';

const run = promisify(execFile);
const SCRIPTS = resolve(import.meta.dirname, '../../scripts');
const SCRIPT = join(SCRIPTS, 'kube-node.sh');

/**
 * A real single-node cluster (scripts/kube-node.sh): control plane, scheduler, containerd,
 * kubelet, kube-proxy, CoreDNS and the NetworkPolicy enforcer. One per machine: the suites
 * that use it run one after the other (see vitest.config.ts).
 */
export interface KubeNode {
  readonly dir: string;
  readonly apiserverUrl: string;
  /** Acts as the `system:masters` admin. */
  readonly admin: KubeConfig;
  readonly nodeName: string;
  /** The node's address (198.19.255.1): where pods reach processes on this machine. */
  readonly nodeIp: string;
  /** Where pods' addresses come from (198.18.0.0/16). */
  readonly podCidr: string;
  /** A kubeconfig file for `token` (say a ServiceAccount's), against this cluster. */
  writeKubeconfig(file: string, token: string): Promise<void>;
  /** kubectl against this cluster, as the admin; resolves to its stdout. */
  kubectl(...args: string[]): Promise<string>;
  /** Server-side apply of one object (or a List), as the admin. */
  apply(object: unknown): Promise<void>;
  /** Imports a docker-archive image (scripts/kube-images.sh) into the node's containerd. */
  importImage(tar: string): Promise<void>;
  /** Builds (cached) and imports one of scripts/kube-images.sh's images; resolves to its reference. */
  importWeirImage(name: WeirImage): Promise<string>;
  /** Installs the real Flink Kubernetes Operator (scripts/kube-operator.sh) and waits until it is healthy. */
  installOperator(): Promise<void>;
  stop(): Promise<void>;
}

const script = (...args: string[]) => runScript(SCRIPT, args);

export type WeirImage = 'flink' | 'operator' | 'gateway';

/** Builds one of scripts/kube-images.sh's images (cached); resolves to its docker-archive tarball and reference. */
export async function buildWeirImage(name: WeirImage): Promise<{ tar: string; ref: string }> {
  const stdout = await runScript(join(SCRIPTS, 'kube-images.sh'), ['build', name]);
  const [, tar, ref] = stdout.trim().split(/\s+/);
  if (!tar || !ref) throw new Error(`kube-images.sh build ${name} printed no image: ${stdout}`);
  return { tar, ref };
}

/** Starts the node in a temp dir (a minute or so); call `stop()` in afterAll. */
export async function startKubeNode(): Promise<KubeNode> {
  const { dir, env } = await startInTempDir(SCRIPT, 'weir-node-');
  const apiserverUrl = env.APISERVER_URL!;
  const caData = (await readFile(env.CA_FILE!)).toString('base64');
  const kubectlPath = env.KUBECTL!;
  let stopped = false;
  return {
    dir,
    apiserverUrl,
    admin: kubeConfigFor(apiserverUrl, caData, env.ADMIN_TOKEN!, 'admin'),
    nodeName: env.NODE_NAME!,
    nodeIp: env.NODE_IP!,
    podCidr: env.POD_CIDR!,
    async writeKubeconfig(file: string, token: string) {
      const config = {
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'weir-node', cluster: { server: apiserverUrl, 'certificate-authority-data': caData } }],
        users: [{ name: 'user', user: { token } }],
        contexts: [{ name: 'weir-node', context: { cluster: 'weir-node', user: 'user' } }],
        'current-context': 'weir-node',
      };
      await writeFile(file, JSON.stringify(config), { mode: 0o600 });
    },
    async kubectl(...args: string[]) {
      try {
        const { stdout } = await run(kubectlPath, ['--kubeconfig', join(dir, 'kubeconfig'), ...args], {
          maxBuffer: 16 * 1024 * 1024,
        });
        return stdout;
      } catch (error) {
        const failed = error as Error & { stderr?: string };
        throw new Error(`kubectl ${args.join(' ')} failed: ${failed.stderr ?? failed.message}`);
      }
    },
    async apply(object: unknown) {
      await new Promise<void>((resolve, reject) => {
        const child = spawn(kubectlPath, ['--kubeconfig', join(dir, 'kubeconfig'), 'apply', '--server-side', '-f', '-']);
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        child.on('error', reject);
        child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`kubectl apply failed: ${stderr}`))));
        child.stdin.end(JSON.stringify(object));
      });
    },
    async importImage(tar: string) {
      await script('import', dir, tar);
    },
    async importWeirImage(name) {
      const { tar, ref } = await buildWeirImage(name);
      await script('import', dir, tar);
      return ref;
    },
    async installOperator() {
      await runScript(join(SCRIPTS, 'kube-operator.sh'), ['install', dir]);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await script('stop', dir);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
