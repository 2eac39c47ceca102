/**
 * The single-node cluster (scripts/kube-node.sh): pods start from the images built here,
 * resource limits and users are enforced, the service network and DNS work, NetworkPolicy
 * is enforced on the wire; and a stop leaves nothing behind on the machine. Weir's own
 * jobs on it, run by the real operator, are activation.test.ts's.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubeNode, type KubeNode } from '../../../helpers/kube-node.js';
import { waitFor } from '../../../helpers/wait-for.js';

const BUSYBOX = 'weir.local/busybox:1';

// A node needs root (network, cgroups, mounts); CI runs as root. Without it the global
// setup says that these tests are skipped, and why.
const asRoot = process.getuid?.() === 0;

let node: KubeNode;
const sysctl = (key: string) => readFileSync(`/proc/sys/${key.replaceAll('.', '/')}`, 'utf8').trim();
const HOST_SETTINGS = ['net.ipv4.ip_forward', 'vm.overcommit_memory', 'kernel.panic'];
let settingsBefore: string[];

beforeAll(async () => {
  if (!asRoot) return;
  settingsBefore = HOST_SETTINGS.map(sysctl);
  node = await startKubeNode();
}, 600_000);

afterAll(async () => {
  await node?.stop();
}, 180_000);

/** A pod that runs one busybox command to its end; resolves to its phase and log. */
async function runPod(namespace: string, name: string, command: string, extra: Record<string, unknown> = {}) {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace },
    spec: {
      restartPolicy: 'Never',
      containers: [{ name: 'main', image: BUSYBOX, imagePullPolicy: 'Never', command: ['sh', '-c', command], ...extra }],
    },
  };
  await node.apply(pod);
  const phase = await waitFor(
    `pod ${namespace}/${name} to end`,
    async () => {
      const value = await node.kubectl('-n', namespace, 'get', 'pod', name, '-o', 'jsonpath={.status.phase}');
      return value === 'Succeeded' || value === 'Failed' ? value : undefined;
    },
    90_000,
  );
  const log = await node.kubectl('-n', namespace, 'logs', name);
  const reason = await node.kubectl(
    '-n', namespace, 'get', 'pod', name, '-o', 'jsonpath={.status.containerStatuses[0].state.terminated.reason}',
  );
  return { phase, log: log.trim(), reason };
}

function readlinkOrEmpty(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
}

describe.runIf(asRoot)('a single-node cluster', () => {
  it('runs a pod as the user its spec names, within its memory limit', async () => {
    await node.kubectl('create', 'namespace', 'limits');
    const user = await runPod('limits', 'who', 'id -u', {
      securityContext: { runAsUser: 9999, runAsGroup: 9999, allowPrivilegeEscalation: false },
    });
    expect(user).toMatchObject({ phase: 'Succeeded', log: '9999' });

    // tail keeps all of its input in memory: 200 MiB against a 64 MiB limit.
    const hungry = await runPod('limits', 'hungry', 'head -c 200m /dev/zero | tail > /dev/null', {
      resources: { limits: { memory: '64Mi', cpu: '200m' }, requests: { memory: '64Mi', cpu: '200m' } },
    });
    expect(hungry).toMatchObject({ phase: 'Failed', reason: 'OOMKilled' });
  }, 240_000);

  it('enforces NetworkPolicy between namespaces, on the wire', async () => {
    await node.kubectl('create', 'namespace', 'net-a');
    await node.kubectl('create', 'namespace', 'net-b');
    await node.apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'server', namespace: 'net-a', labels: { app: 'server' } },
      spec: {
        containers: [{
          name: 'main', image: BUSYBOX, imagePullPolicy: 'Never',
          command: ['sh', '-c', 'mkdir -p /tmp/www && echo hello > /tmp/www/index.html && exec busybox httpd -f -p 8080 -h /tmp/www'],
          readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
        }],
      },
    });
    const serverIp = await waitFor(
      'the server pod to be ready',
      async () => {
        const ready = await node.kubectl('-n', 'net-a', 'get', 'pod', 'server', '-o', 'jsonpath={.status.containerStatuses[0].ready}');
        if (ready !== 'true') return undefined;
        return await node.kubectl('-n', 'net-a', 'get', 'pod', 'server', '-o', 'jsonpath={.status.podIP}');
      },
      90_000,
    );
    expect(serverIp).toMatch(/^198\.18\./);
    // nc, not wget: busybox 1.35's `wget -T` crashes (SIGSEGV) in a container.
    const fetch = `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${serverIp} 8080 | grep -q hello && echo REACHED || echo BLOCKED`;

    expect((await runPod('net-b', 'before', fetch)).log).toContain('REACHED');

    // Account namespaces get this policy from Weir: ingress only from their own namespace.
    await node.apply({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'same-namespace-only', namespace: 'net-a' },
      spec: { podSelector: {}, policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: {} }] }] },
    });
    await waitFor(
      'the policy to block net-b',
      async () => {
        const name = `probe-${Date.now()}`;
        return (await runPod('net-b', name, fetch)).log.includes('BLOCKED') || undefined;
      },
      60_000,
    );
    expect((await runPod('net-b', 'after', fetch)).log).toContain('BLOCKED');
    expect((await runPod('net-a', 'neighbour', fetch)).log).toContain('REACHED');
  }, 300_000);

  it('resolves services by name from a pod', async () => {
    await node.kubectl('-n', 'net-a', 'expose', 'pod', 'server', '--port', '80', '--target-port', '8080');
    const result = await runPod('net-a', 'by-name', 'wget -q -O - http://server.net-a.svc.cluster.local/');
    expect(result).toMatchObject({ phase: 'Succeeded', log: 'hello' });
  }, 120_000);

  it('keeps service addresses on the machine: one no Service holds is refused, not answered from outside', async () => {
    // Without the node's route for the service range, the machine's egress answered such
    // a connection (HTTP 404) and a client that kept it alive never reached the Service.
    const route = execFileSync('ip', ['route', 'get', '198.19.15.250']).toString();
    expect(route).toContain('dev weir-node0');
    const answer = await fetch('http://198.19.15.250:8081/', { signal: AbortSignal.timeout(10_000) }).then(
      (response) => `HTTP ${response.status}`,
      (error: Error & { cause?: { code?: string } }) => error.cause?.code ?? error.name,
    );
    expect(answer).toMatch(/^(EHOSTUNREACH|ECONNREFUSED|ENETUNREACH|TimeoutError)$/);
  }, 30_000);
});

describe.runIf(asRoot)('stopping the node', () => {
  it('leaves no process, mount, link, cgroup, rule or setting behind', async () => {
    const dir = node.dir;
    await node.stop();
    const processes = execFileSync('ps', ['-eo', 'args']).toString().split('\n').filter((line) => line.includes(`${dir}/`));
    expect(processes).toEqual([]);
    const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').filter((line) => line.includes(dir));
    expect(mounts).toEqual([]);
    const links = execFileSync('ip', ['-o', 'link']).toString();
    expect(links).not.toMatch(/weir-cni0|weir-node0/);
    expect(execFileSync('ip', ['route']).toString()).not.toContain('198.19.0.0/20');
    const rules = execFileSync('iptables-save').toString();
    expect(rules).not.toMatch(/KUBE-|CNI-/);
    const tables = execFileSync('nft', ['list', 'tables']).toString();
    expect(tables).not.toContain('kube-network-policies');
    const cgroups = readdirSync('/sys/fs/cgroup').filter((hierarchy) => existsSync(`/sys/fs/cgroup/${hierarchy}/weir-node`));
    expect(cgroups).toEqual([]);
    expect(existsSync('/run/weir-kube-node.active')).toBe(false);
    const logLinks = (existsSync('/var/log/containers') ? readdirSync('/var/log/containers') : [])
      .filter((name) => readlinkOrEmpty(`/var/log/containers/${name}`).startsWith(`${dir}/`));
    expect(logLinks).toEqual([]);
    expect(HOST_SETTINGS.map(sysctl)).toEqual(settingsBefore);
  }, 180_000);
});
