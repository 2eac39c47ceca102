import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadAllYaml, type KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/config.js';
import { openDatabase, type DatabaseHandle } from '../../../src/platform/database.js';
import { createLogger } from '../../../src/platform/logger.js';
import { migrateToLatest } from '../../../src/platform/migrator.js';
import { freePort } from '../../../src/platform/net.js';
import { createRuntime, type RuntimeParts } from '../../../src/runtime/create-runtime.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { startKubeTestEnv, type KubeTestEnv } from '../../helpers/kube.js';
import { sseResults } from '../../helpers/sse.js';
import { PLATFORM_NAMESPACE, readBack, setUpPlatform } from './fixtures.js';

const PREVIEW = `subscription ($input: PreviewInput!) { preview(input: $input) {
  __typename
  ... on PreviewQueued { position }
  ... on PreviewEnded { reason message } } }`;

const DEPLOY = resolve(import.meta.dirname, '../../../deploy');
const REQUIRED = { WEIR_RUNTIME: 'kubernetes', WEIR_K8S_STORAGE_DIR: 's3://weir-flink', WEIR_K8S_KAFKA_BOOTSTRAP: 'kafka:9092', WEIR_K8S_KAFKA_USERNAME: 'weir-gateway', WEIR_K8S_KAFKA_PASSWORD: 'pw' };

describe('the preview settings of WEIR_RUNTIME=kubernetes', () => {
  it('default to the namespace deploy/rbac.yaml grants and deploy/config.yaml sets', async () => {
    const settings = loadConfig(REQUIRED).kubernetes!;
    expect(settings).toMatchObject({
      platformNamespace: 'weir-system',
      previewName: 'weir-preview',
      previewJobManagerUrl: undefined,
      previewGatewayUrl: undefined,
    });
    const rbac = loadAllYaml(await readFile(join(DEPLOY, 'rbac.yaml'), 'utf8')) as KubernetesObject[];
    const role = rbac.find((o) => o?.kind === 'Role' && o.metadata?.name === 'weir-gateway-preview');
    expect(role?.metadata?.namespace).toBe(settings.platformNamespace);
    const [configMap] = loadAllYaml(await readFile(join(DEPLOY, 'config.yaml'), 'utf8')) as { data: Record<string, string> }[];
    expect(configMap!.data).toMatchObject({ WEIR_K8S_PLATFORM_NAMESPACE: 'weir-system', WEIR_K8S_PREVIEW_NAME: 'weir-preview' });
    expect(loadConfig({ ...REQUIRED, ...configMap!.data }).kubernetes).toMatchObject({ platformNamespace: 'weir-system' });
  });

  it('take overrides and refuse malformed values', () => {
    const settings = loadConfig({
      ...REQUIRED,
      WEIR_K8S_PLATFORM_NAMESPACE: 'weir-staging',
      WEIR_K8S_PREVIEW_NAME: 'previews',
      WEIR_K8S_PREVIEW_JOBMANAGER_URL: 'http://localhost:8081',
      WEIR_K8S_PREVIEW_GATEWAY_URL: 'http://localhost:8083',
    }).kubernetes;
    expect(settings).toMatchObject({
      platformNamespace: 'weir-staging',
      previewName: 'previews',
      previewJobManagerUrl: 'http://localhost:8081',
      previewGatewayUrl: 'http://localhost:8083',
    });
    for (const [key, value] of [
      ['WEIR_K8S_PLATFORM_NAMESPACE', 'Weir_System'],
      ['WEIR_K8S_PREVIEW_NAME', '-preview'],
      ['WEIR_K8S_PREVIEW_JOBMANAGER_URL', 'not a url'],
    ] as const) {
      expect(() => loadConfig({ ...REQUIRED, [key]: value }), key).toThrow(ConfigError);
    }
  });
});

// WEIR_RUNTIME=kubernetes, built from configuration as main.ts builds it: the preview
// session cluster is applied to the real apiserver with the gateway's least-privilege
// token, and the preview subscription runs on it. No JobManager runs here (no kubelet),
// so a preview ends with an error that says so.
describe('previews on the Kubernetes runtime, from configuration', () => {
  let env: KubeTestEnv;
  let dir: string;
  let database: DatabaseHandle;
  let parts: RuntimeParts;
  let t: TestApp;
  let jobManagerUrl: string;
  let settings: Record<string, string>;

  beforeAll(async () => {
    env = await startKubeTestEnv();
    const { gatewayToken } = await setUpPlatform(env);
    dir = await mkdtemp(join(tmpdir(), 'weir-preview-runtime-'));
    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(kubeconfig, env.kubeConfigFor(gatewayToken).exportConfig(), { mode: 0o600 });
    jobManagerUrl = `http://127.0.0.1:${await freePort()}`;
    settings = {
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      WEIR_RUNTIME: 'kubernetes',
      WEIR_K8S_KUBECONFIG: kubeconfig,
      WEIR_K8S_INSTANCE: 'weir-test',
      WEIR_K8S_STORAGE_DIR: 's3://weir-flink',
      WEIR_K8S_KAFKA_BOOTSTRAP: '127.0.0.1:9',
      WEIR_K8S_KAFKA_USERNAME: 'weir-gateway',
      WEIR_K8S_KAFKA_PASSWORD: 'pw',
      WEIR_K8S_PREVIEW_JOBMANAGER_URL: jobManagerUrl,
      WEIR_PREVIEW_POOL_SIZE: '3',
      WEIR_PREVIEW_QUEUE_TIMEOUT_MS: '3000',
    };
    const config = loadConfig(settings);
    expect(config.kubernetes).toMatchObject({ platformNamespace: 'weir-system', previewName: 'weir-preview' });
    database = await openDatabase({ databaseUrl: undefined, pgliteDir: 'memory://' });
    await migrateToLatest(database.db);
    parts = createRuntime(config, createLogger(config.logLevel), database.db);
    t = await startTestApp({ database, runtime: parts.runtime, storage: parts.storage, preview: parts.preview, config });
  }, 120_000);

  afterAll(async () => {
    await t?.close();
    await parts?.close();
    await database?.close();
    await env?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('has preview parts whose start() applies the session FlinkDeployment and the SQL Gateway', async () => {
    expect(parts.preview).toBeDefined();
    const endpoints = await parts.preview!.cluster.start();
    expect(endpoints).toEqual({ jobManagerUrl, gatewayUrl: 'http://weir-preview-sql-gateway.weir-system.svc:8083' });

    const metadata = (kind: string, name: string) => ({ kind, metadata: { name, namespace: PLATFORM_NAMESPACE } });
    const deployment = await readBack(env.admin, { apiVersion: 'flink.apache.org/v1beta1', ...metadata('FlinkDeployment', 'weir-preview') });
    expect(deployment.metadata.labels).toMatchObject({ 'weir.dev/instance': 'weir-test' });
    expect(deployment.spec).toMatchObject({
      image: 'weir/flink:1.20.3-java17',
      flinkVersion: 'v1_20',
      serviceAccount: 'flink',
      flinkConfiguration: { 'taskmanager.numberOfTaskSlots': '1', 'slotmanager.redundant-taskmanager-num': '3' },
    });
    expect(deployment.spec.job).toBeUndefined();
    const gateway = await readBack(env.admin, { apiVersion: 'apps/v1', ...metadata('Deployment', 'weir-preview-sql-gateway') });
    expect(gateway.spec.template.spec.containers[0].command).toContain('-Drest.address=weir-preview-rest.weir-system.svc');
    const service = await readBack(env.admin, { apiVersion: 'v1', ...metadata('Service', 'weir-preview-sql-gateway') });
    expect(service.spec.ports).toMatchObject([{ port: 8083 }]);
    const binding = await readBack(env.admin, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      ...metadata('RoleBinding', 'weir-preview-flink'),
    });
    expect(binding.roleRef.name).toBe('weir-flink');
  });

  it('runs the preview subscription there: not UNAVAILABLE, it ends saying the JobManager did not answer', async () => {
    const { key } = await t.signUp('Kube previews');
    const created = await t.gql(
      'mutation { createStream(input: { name: "orders", kind: APPEND, fields: [{ name: "id", type: "BIGINT" }] }) { id } }',
      {},
      { key },
    );
    expect(created.errors).toBeUndefined();
    const started = Date.now();
    const [result] = await sseResults(t, PREVIEW, { input: { sql: 'SELECT id FROM orders' } }, key, 1);
    expect(result?.errors, JSON.stringify(result?.errors)).toBeUndefined();
    expect(result?.data?.preview).toEqual({
      __typename: 'PreviewEnded',
      reason: 'ERROR',
      message: expect.stringContaining(`The preview JobManager (${jobManagerUrl}) did not answer within 3 s`),
    });
    // It waited for the JobManager as long as a preview waits for a TaskManager, not longer.
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(parts.preview!.pool.stats()).toMatchObject({ queued: 0, leased: 0 });
  }, 60_000);

  it('has previews off with WEIR_PREVIEW_POOL_SIZE=0: Flink starts preview TaskManagers only as idle spares, so a preview answers UNAVAILABLE at once', async () => {
    const config = loadConfig({ ...settings, WEIR_PREVIEW_POOL_SIZE: '0', WEIR_PREVIEW_QUEUE_TIMEOUT_MS: '60000' });
    const off = createRuntime(config, createLogger('silent'), database.db);
    const app = await startTestApp({ database, runtime: off.runtime, storage: off.storage, preview: off.preview, config });
    try {
      expect(off.preview).toBeUndefined();
      const { key } = await app.signUp('Previews off');
      await app.gql('mutation { createStream(input: { name: "orders", kind: APPEND, fields: [{ name: "id", type: "BIGINT" }] }) { id } }', {}, { key });
      const started = Date.now();
      const [result] = await sseResults(app, PREVIEW, { input: { sql: 'SELECT id FROM orders' } }, key, 1);
      expect(result?.errors?.[0]?.extensions?.code, JSON.stringify(result)).toBe('UNAVAILABLE');
      // Not after the 60 s queue timeout: at once.
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await app.close();
      await off.close();
    }
  }, 60_000);
});
