/**
 * The single-node cluster (scripts/kube-node.sh): pods start from the images built here,
 * resource limits and users are enforced, the service network and DNS work, NetworkPolicy
 * is enforced on the wire; the real Flink Kubernetes Operator runs Weir's Flink image as
 * an application cluster; and a stop leaves nothing behind on the machine.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubeNode, type KubeNode } from '../../../helpers/kube-node.js';
import { waitFor } from '../../../helpers/wait-for.js';

const BUSYBOX = 'weir.local/busybox:1';

// A node needs root (network, cgroups, mounts); CI runs as root. Without it the global
// setup says that these tests are skipped, and why.
const asRoot = process.getuid?.() === 0;

let node: KubeNode;
let operatorJob: Promise<void>;
const sysctl = (key: string) => readFileSync(`/proc/sys/${key.replaceAll('.', '/')}`, 'utf8').trim();
const HOST_SETTINGS = ['net.ipv4.ip_forward', 'vm.overcommit_memory', 'kernel.panic'];
let settingsBefore: string[];

beforeAll(async () => {
  if (!asRoot) return;
  settingsBefore = HOST_SETTINGS.map(sysctl);
  node = await startKubeNode();
  operatorJob = startOperatorJob();
  operatorJob.catch(() => undefined); // reported by the test that awaits it
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

/**
 * The operator's part starts as soon as the node is up and runs beside the pod tests
 * (they need seconds, a Flink cluster a minute or more); its test awaits it.
 */
const APP_NAMESPACE = 'flink-app';
async function startOperatorJob(): Promise<void> {
  await node.installOperator();
  const image = await node.importWeirImage('flink');
  const namespace = APP_NAMESPACE;
  await node.kubectl('create', 'namespace', namespace);
  await node.kubectl('-n', namespace, 'create', 'serviceaccount', 'flink');
  // The ClusterRole Weir binds to each account's `flink` ServiceAccount (deploy/rbac.yaml).
  const deploy = resolve(import.meta.dirname, '../../../../deploy');
  await node.kubectl('apply', '--server-side', '-f', `${deploy}/namespace.yaml`, '-f', `${deploy}/rbac.yaml`);
  await node.kubectl('-n', namespace, 'create', 'rolebinding', 'flink', '--clusterrole', 'weir-flink', '--serviceaccount', `${namespace}:flink`);
  const spec = {
    name: 'probe',
    mode: 'application',
    parallelism: 1,
    checkpointDir: 'file:///tmp/checkpoints',
    checkpointIntervalMs: 5000,
    statements: [
      "CREATE TEMPORARY TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '5')",
      "CREATE TEMPORARY TABLE snk (id BIGINT) WITH ('connector' = 'blackhole')",
      'INSERT INTO snk SELECT id FROM src',
    ],
  };
  await node.apply({
    apiVersion: 'v1', kind: 'Secret', metadata: { name: 'probe-spec', namespace }, stringData: { 'spec.json': JSON.stringify(spec) },
  });
  const container = { name: 'flink-main-container', volumeMounts: [{ name: 'spec', mountPath: '/opt/weir/spec', readOnly: true }] };
  await node.apply({
    apiVersion: 'flink.apache.org/v1beta1',
    kind: 'FlinkDeployment',
    metadata: { name: 'probe', namespace },
    spec: {
      image,
      imagePullPolicy: 'Never',
      flinkVersion: 'v1_20',
      mode: 'native',
      serviceAccount: 'flink',
      flinkConfiguration: { 'taskmanager.numberOfTaskSlots': '1' },
      podTemplate: {
        spec: {
          securityContext: { runAsUser: 9999, runAsGroup: 9999, runAsNonRoot: true },
          containers: [container],
          volumes: [{ name: 'spec', secret: { secretName: 'probe-spec' } }],
        },
      },
      jobManager: { replicas: 1, resource: { cpu: 0.5, memory: '1024m' } },
      taskManager: { resource: { cpu: 0.5, memory: '1024m' } },
      job: {
        jarURI: 'local:///opt/weir/sql-runner.jar',
        entryClass: 'dev.weir.runner.SqlRunner',
        args: ['--spec', '/opt/weir/spec/spec.json'],
        parallelism: 1,
        upgradeMode: 'stateless',
      },
    },
  });
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
});

describe.runIf(asRoot)('the Flink Kubernetes Operator on the node', () => {
  it("runs Weir's Flink image as an application cluster: JobManager and TaskManager pods, non-root, sized, RUNNING", async () => {
    await operatorJob;
    const namespace = APP_NAMESPACE;
    // The operator's own status, as Weir's deployment watch reads it.
    await waitFor(
      'the operator to report the job RUNNING and the deployment STABLE',
      async () => {
        const status = await node.kubectl('-n', namespace, 'get', 'flinkdeployment', 'probe', '-o',
          'jsonpath={.status.jobStatus.state}/{.status.lifecycleState}/{.status.jobManagerDeploymentStatus}');
        return status === 'RUNNING/STABLE/READY' || undefined;
      },
      300_000,
      1_000,
    );
    const pods = JSON.parse(await node.kubectl('-n', namespace, 'get', 'pods', '-o', 'json')) as {
      items: { metadata: { name: string; labels: Record<string, string> }; status: { phase: string };
        spec: { securityContext: Record<string, unknown>; containers: { resources: unknown }[] } }[];
    };
    const byComponent = (component: string) => pods.items.filter((pod) => pod.metadata.labels['component'] === component);
    for (const component of ['jobmanager', 'taskmanager']) {
      const [pod] = byComponent(component);
      expect(pod, component).toBeDefined();
      expect(pod!.status.phase).toBe('Running');
      expect(pod!.spec.securityContext).toMatchObject({ runAsUser: 9999, runAsNonRoot: true });
      expect(pod!.spec.containers[0]!.resources).toEqual({
        limits: { cpu: '500m', memory: '1Gi' },
        requests: { cpu: '500m', memory: '1Gi' },
      });
    }

    await node.kubectl('-n', namespace, 'delete', 'flinkdeployment', 'probe');
    await waitFor(
      'the deployment and its pods to be gone',
      async () => (await node.kubectl('-n', namespace, 'get', 'pods', '-o', 'name')).trim() === '' || undefined,
      120_000,
      1_000,
    );
  }, 600_000);
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
