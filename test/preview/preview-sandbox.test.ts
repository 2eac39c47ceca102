import { describe, expect, it } from 'vitest';
import {
  PREVIEW_CLUSTER_SETTINGS,
  PREVIEW_GATEWAY_SETTINGS,
  previewSessionProperties,
} from '../../src/preview/preview-sandbox.js';
import { localPreviewConfig, type Memory } from '../../src/runtime/local/preview-cluster.js';
import { previewManifests } from '../../src/runtime/kubernetes/preview-manifests.js';

/** The settings a preview's containment rests on; changing one is a security decision. */
const SECURITY = {
  'table.dynamic-table-options.enabled': 'false',
  'restart-strategy.type': 'none',
  'parallelism.default': '1',
  'table.exec.resource.default-parallelism': '1',
};
const CLUSTER_SECURITY = { ...SECURITY, 'taskmanager.numberOfTaskSlots': '1', 'web.submit.enable': 'false' };

const noCheckpoints = (config: Record<string, string>) => Object.keys(config).filter((key) => key.startsWith('execution.checkpointing.interval'));

const memory: Memory = { jobmanager: { jvm: [] }, taskmanager: { jvm: [] }, sqlGateway: { jvm: [] } };

function kubernetesManifests(flinkConfig?: Record<string, string>) {
  const m = previewManifests({
    flinkConfig,
    name: 'weir-preview',
    namespace: 'weir-system',
    instance: 'weir',
    image: 'weir/flink:test',
    runnerJarPath: '/opt/weir/sql-runner.jar',
    flinkVersion: 'v1_20',
    poolSize: 2,
    serviceAccountName: 'flink',
    flinkClusterRole: 'weir-flink',
  });
  const flinkConfiguration = (m.flinkDeployment.spec as { flinkConfiguration: Record<string, string> }).flinkConfiguration;
  const command = m.gatewayDeployment.spec.template.spec.containers[0].command as string[];
  const gatewayFlags = Object.fromEntries(
    command.filter((arg) => arg.startsWith('-D')).map((arg) => [arg.slice(2, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]),
  );
  return { flinkConfiguration, gatewayFlags };
}

describe('the preview sandbox (one configuration for both backends)', () => {
  it('pins the settings a preview is contained by', () => {
    expect(PREVIEW_CLUSTER_SETTINGS).toMatchObject(CLUSTER_SECURITY);
    expect(PREVIEW_GATEWAY_SETTINGS).toMatchObject(SECURITY);
    expect(previewSessionProperties('acct1')).toMatchObject({ ...SECURITY, 'pipeline.name': 'weir-preview-acct1' });
    expect(noCheckpoints(PREVIEW_CLUSTER_SETTINGS)).toEqual([]);
  });

  it('the local session cluster writes it, after its own settings (nothing overrides it)', () => {
    const config = localPreviewConfig({ restPort: 1, rpcPort: 2, gatewayPort: 3 }, memory);
    expect(config).toMatchObject({ ...CLUSTER_SECURITY, ...PREVIEW_CLUSTER_SETTINGS, ...PREVIEW_GATEWAY_SETTINGS });
    expect(config['rest.bind-address']).toBe('127.0.0.1');
    expect(config['sql-gateway.endpoint.rest.bind-address']).toBe('127.0.0.1');
    expect(noCheckpoints(config)).toEqual([]);
  });

  it('the Kubernetes session cluster and its SQL Gateway carry it', () => {
    const { flinkConfiguration, gatewayFlags } = kubernetesManifests();
    expect(flinkConfiguration).toMatchObject({ ...CLUSTER_SECURITY, ...PREVIEW_CLUSTER_SETTINGS });
    expect(gatewayFlags).toMatchObject({ ...SECURITY, ...PREVIEW_GATEWAY_SETTINGS });
    expect(noCheckpoints(flinkConfiguration)).toEqual([]);
  });

  it("the installation's Flink options reach the Kubernetes session cluster, and cannot undo the sandbox", () => {
    // The config refuses these keys (config.test.ts); should one get through, the sandbox wins.
    const undo = { 'table.dynamic-table-options.enabled': 'true', 'taskmanager.numberOfTaskSlots': '4', 'restart-strategy.type': 'fixed-delay' };
    const { flinkConfiguration } = kubernetesManifests({ 's3.endpoint': 'http://198.19.255.1:9000', ...undo });
    expect(flinkConfiguration).toMatchObject({ ...CLUSTER_SECURITY, ...PREVIEW_CLUSTER_SETTINGS, 's3.endpoint': 'http://198.19.255.1:9000' });
  });
});
