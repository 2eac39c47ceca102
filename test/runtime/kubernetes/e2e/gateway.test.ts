/**
 * The gateway itself in the cluster, installed from deploy/ as a production install does:
 * its image built here (scripts/kube-images.sh gateway, laid out as deploy/gateway.Dockerfile
 * describes), deploy/namespace.yaml and rbac.yaml, deploy/config.yaml with this node's
 * addresses patched in, the Secret deploy/config.yaml asks for (a real Postgres on the node
 * IP), and deploy/gateway.yaml with the local image's name. A user then signs up, activates
 * a connection and previews its stream, all through the gateway's Service.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix, resolve } from 'node:path';
import { promisify } from 'node:util';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { decodeId } from '../../../../src/graphql/global-id.js';
import { buildWeirImage, type KubeNode } from '../../../helpers/kube-node.js';
import { startTestPostgres, type TestPostgres } from '../../../helpers/postgres.js';
import { endOf, PREVIEW, rowsOf, startOf } from '../../../helpers/preview.js';
import { waitFor } from '../../../helpers/wait-for.js';
import { PLATFORM_NAMESPACE, podsOf, startPlatformOnNode, type PlatformOnNode } from './weir-on-node.js';

const run = promisify(execFile);
const asRoot = process.getuid?.() === 0;
const DEPLOY = resolve(import.meta.dirname, '../../../../deploy');
/** Pods start in a minute or more here: 2 cores run the node, the operator and the JVMs. */
const POD_START_MS = 360_000;

let platform: PlatformOnNode;
let node: KubeNode;
let postgres: TestPostgres | undefined;
let dir: string;
let image: { tar: string; ref: string };
/** The gateway's Service, as a client in the cluster's network reaches it. */
let url: string;
const clients: Client[] = [];

/** A GraphQL operation over HTTP through the Service; resolves to its data, throws on errors. */
async function gql(query: string, variables: Record<string, unknown> = {}, key?: string): Promise<Record<string, any>> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: Record<string, any>; errors?: unknown[] };
  if (body.errors) throw new Error(`${query.slice(0, 60)}…: ${JSON.stringify(body.errors)}`);
  return body.data!;
}

/** The last stage of a Dockerfile, as an image config says it: user, working dir, env, command, ports. */
function lastStageOf(dockerfile: string) {
  const lines = dockerfile.replace(/\\\n/g, ' ').split('\n').map((line) => line.trim());
  const stage = lines.slice(lines.map((line) => line.startsWith('FROM ')).lastIndexOf(true));
  const values = (instruction: string) => stage.filter((line) => line.startsWith(`${instruction} `)).map((line) => line.slice(instruction.length + 1).trim());
  return {
    user: values('USER').at(-1),
    workdir: values('WORKDIR').at(-1),
    env: values('ENV').flatMap((line) => line.split(/\s+/)),
    cmd: JSON.parse(values('CMD').at(-1)!) as string[],
    ports: values('EXPOSE').flatMap((line) => line.split(/\s+/)),
    /** Where each COPY puts its files (relative to the working dir when not absolute). */
    copied: values('COPY').map((line) => {
      const [source, target] = line.split(/\s+/).filter((word) => !word.startsWith('--')).slice(-2) as [string, string];
      return target.endsWith('/') ? `${target}${source.split('/').at(-1)}` : target;
    }),
  };
}

/** The config of a docker-archive image. */
async function imageConfigOf(tar: string) {
  const tarFile = async (name: string) => (await run('tar', ['-xOf', tar, name], { maxBuffer: 1 << 20 })).stdout;
  const [manifest] = JSON.parse(await tarFile('manifest.json')) as { Config: string }[];
  return (JSON.parse(await tarFile(manifest!.Config)) as { config: { User: string; WorkingDir: string; Env: string[]; Cmd: string[] } }).config;
}

beforeAll(async () => {
  if (!asRoot) return;
  dir = await mkdtemp(join(tmpdir(), 'weir-gateway-pod-'));
  platform = await startPlatformOnNode();
  ({ node } = platform);
  image = await buildWeirImage('gateway');
  await node.importImage(image.tar);
  postgres = await startTestPostgres({ listenOn: { address: node.nodeIp, clients: node.podCidr } });

  // deploy/config.yaml as it is, then this node's values: Kafka, the object store, the
  // Flink image; one idle preview TaskManager (the node's 2 cores hold the session
  // cluster beside the gateway), and a queue that waits for its first start.
  await node.kubectl('apply', '--server-side', '-f', `${DEPLOY}/config.yaml`);
  const data = {
    ...platform.settings,
    WEIR_PREVIEW_POOL_SIZE: '1',
    WEIR_PREVIEW_QUEUE_TIMEOUT_MS: '300000',
    WEIR_RECONCILE_INTERVAL_MS: '1000',
  };
  await node.kubectl('-n', PLATFORM_NAMESPACE, 'patch', 'configmap', 'weir-gateway', '--type', 'merge', '-p', JSON.stringify({ data }));
  // The Secret deploy/config.yaml tells an operator to create by hand.
  await node.kubectl(
    '-n', PLATFORM_NAMESPACE, 'create', 'secret', 'generic', 'weir-gateway',
    `--from-literal=DATABASE_URL=${postgres.url}`,
    `--from-literal=WEIR_SECRET=${randomBytes(32).toString('hex')}`,
    ...Object.entries(platform.secrets).map(([name, value]) => `--from-literal=${name}=${value}`),
  );
  // deploy/gateway.yaml with the image built here, as `kustomize edit set image` would.
  const manifest = await readFile(`${DEPLOY}/gateway.yaml`, 'utf8');
  expect(manifest).toContain('image: weir/gateway:0.1.0');
  await writeFile(join(dir, 'gateway.yaml'), manifest.replace('image: weir/gateway:0.1.0', `image: ${image.ref}`));
  await node.kubectl('apply', '--server-side', '-f', join(dir, 'gateway.yaml'));
  await node.kubectl('-n', PLATFORM_NAMESPACE, 'rollout', 'status', 'deployment/weir-gateway', '--timeout=300s');
  const clusterIp = (await node.kubectl('-n', PLATFORM_NAMESPACE, 'get', 'service', 'weir-gateway', '-o', 'jsonpath={.spec.clusterIP}')).trim();
  url = `http://${clusterIp}`;
}, 900_000);

afterAll(async () => {
  for (const client of clients) await client.dispose();
  if (platform) {
    // The gateway's last log lines, for when a test failed (the pod goes with the node).
    const logs = await node.kubectl('-n', PLATFORM_NAMESPACE, 'logs', 'deployment/weir-gateway', '--tail=40').catch(() => '');
    if (logs) console.log(`the gateway pod's last lines:\n${logs}`);
    await node.kubectl('-n', PLATFORM_NAMESPACE, 'delete', 'deployment', 'weir-gateway', '--wait=true', '--timeout=60s').catch(() => undefined);
  }
  // Postgres first: it listens on the node IP, which goes with the node.
  await postgres?.stop();
  await platform?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 300_000);

describe.runIf(asRoot)('the gateway in the cluster, from deploy/, used through its Service', () => {
  it('runs the image built here as deploy/gateway.Dockerfile describes it, as user 10001 on a read-only root', async () => {
    const dockerfile = lastStageOf(await readFile(`${DEPLOY}/gateway.Dockerfile`, 'utf8'));
    const config = await imageConfigOf(image.tar);
    expect(config.User).toBe(dockerfile.user);
    expect(config.WorkingDir).toBe(dockerfile.workdir);
    expect(config.Cmd).toEqual(dockerfile.cmd);
    for (const variable of dockerfile.env) expect(config.Env).toContain(variable);
    expect(config.Env).toContain(`PORT=${dockerfile.ports[0]}`);

    const [pod] = await podsOf(node, PLATFORM_NAMESPACE, 'app.kubernetes.io/name=weir-gateway');
    const exec = (...command: string[]) => node.kubectl('-n', PLATFORM_NAMESPACE, 'exec', pod!.metadata.name, '--', ...command);
    expect((await exec('id', '-u')).trim()).toBe('10001');
    expect((await exec('node', '--version')).trim()).toMatch(/^v20\./);
    expect(dockerfile.copied).toContain('./flink/memory.json');
    for (const path of dockerfile.copied) await exec('test', '-e', posix.join(dockerfile.workdir!, path));
    await expect(exec('touch', '/app/written')).rejects.toThrow(/Read-only file system/);
    // Readiness through the Service: the database answers.
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
  });

  it('takes a user from signUp through an activation to a preview over graphql-ws, all through its Service', async () => {
    const signUp = await gql('mutation { signUp(input: { name: "In the cluster" }) { secret account { id } } }');
    const key = signUp.signUp.secret as string;
    const stream = (
      await gql('mutation { createStream(input: { name: "orders", kind: APPEND, fields: [{ name: "id", type: "BIGINT" }] }) { id } }', {}, key)
    ).createStream.id as string;
    const connection = (
      await gql('mutation ($input: CreateConnectionInput!) { createConnection(input: $input) { id } }', {
        input: {
          name: 'orders_gen',
          connector: 'datagen',
          type: 'SOURCE',
          streamId: stream,
          properties: { 'rows-per-second': 20, 'fields.id.kind': 'sequence', 'fields.id.start': 1, 'fields.id.end': 1_000_000 },
        },
      }, key)
    ).createConnection.id as string;
    const stateOf = async () =>
      (await gql('query ($id: ID!) { connection(id: $id) { actualState } }', { id: connection }, key)).connection.actualState as string;

    // Activation: the gateway in its pod writes the FlinkDeployment; the operator runs it.
    await gql('mutation ($id: ID!) { activateConnection(id: $id) { id } }', { id: connection }, key);
    await waitFor('the connection RUNNING', async () => ((await stateOf()) === 'RUNNING' ? true : undefined), POD_START_MS, 1000);
    await waitFor('10 records in the stream', async () => {
      const records = (await gql('query ($id: ID!) { streamRecords(streamId: $id, from: EARLIEST, limit: 10) { value } }', { id: stream }, key)).streamRecords;
      return records.length >= 10 ? true : undefined;
    }, 120_000, 1000);
    // Deactivated, so that the node's cores are free for the preview session cluster.
    await gql('mutation ($id: ID!) { deactivateConnection(id: $id) { id } }', { id: connection }, key);
    const namespace = `weir-acct-${decodeId(signUp.signUp.account.id, 'Account')}`;
    await waitFor("the connection's pods gone", async () => ((await node.kubectl('-n', namespace, 'get', 'pods', '-o', 'name')).trim() === '' ? true : undefined), 120_000, 1000);

    // A preview over graphql-ws through the Service: the session cluster starts on demand.
    const client = createClient({ url: url.replace('http', 'ws') + '/graphql', webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: `Bearer ${key}` } });
    clients.push(client);
    const events = await new Promise<any[]>((resolveEvents, reject) => {
      const seen: any[] = [];
      client.subscribe(
        { query: PREVIEW, variables: { input: { sql: 'SELECT id FROM orders WHERE MOD(id, 2) = 0', rowLimit: 5, timeLimitSeconds: 90 } } },
        {
          next: (result) => (result.errors ? reject(new Error(JSON.stringify(result.errors))) : seen.push((result.data as { preview: unknown }).preview)),
          error: reject,
          complete: () => resolveEvents(seen),
        },
      );
    });
    expect(endOf(events), JSON.stringify(events)).toMatchObject({ reason: 'ROW_LIMIT' });
    expect(rowsOf(events).map((row: any) => Number(row.values[0]))).toEqual([2, 4, 6, 8, 10]);
    expect(startOf(events).taskManager).toMatch(/^weir-preview-taskmanager-/);

    // deploy/config.yaml's WEIR_K8S_PREVIEW_CPU_LIMIT: the JobManager (through Flink's
    // limit factor) and the SQL Gateway may burst to it; TaskManagers keep their size.
    const cpuLimit = /WEIR_K8S_PREVIEW_CPU_LIMIT: "([\d.]+)"/.exec(await readFile(`${DEPLOY}/config.yaml`, 'utf8'))![1]!;
    const cpuOf = async (selector: string) =>
      (await podsOf(node, PLATFORM_NAMESPACE, selector)).map((pod) => {
        const main = pod.spec.containers[0]!.resources;
        return { request: main.requests.cpu, limit: main.limits.cpu };
      });
    const burst = { request: '500m', limit: cpuLimit };
    expect(await cpuOf('app=weir-preview,component=jobmanager')).toEqual([burst]);
    expect(await cpuOf('app=weir-preview-sql-gateway')).toEqual([burst]);
    for (const taskManager of await cpuOf('app=weir-preview,component=taskmanager')) expect(taskManager).toEqual({ request: '500m', limit: '500m' });
  }, 2 * POD_START_MS + 240_000);
});
