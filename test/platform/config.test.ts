import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('loadConfig', () => {
  it('gives the documented defaults for an empty environment', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      runtime: 'local',
      checkpointIntervalMs: 5000,
      jobUnresponsiveMs: 60_000,
      savepointTimeoutMs: 60_000,
      jobStartTimeoutMs: 300_000,
      jobMaxRestarts: 5,
      jobRestartWindowMs: 1_800_000,
      reconcileIntervalMs: 5000,
      previewPoolSize: 2,
      previewQueueTimeoutMs: 30_000,
      wsIdleTimeoutMs: 60_000,
      wsMaxSocketsPerKey: 10,
      kubernetes: undefined,
    });
  });

  it('reads numbers from strings and treats an empty value as unset', () => {
    const config = loadConfig({ WEIR_JOB_UNRESPONSIVE_MS: '15000', WEIR_PREVIEW_POOL_SIZE: '' });
    expect(config.jobUnresponsiveMs).toBe(15_000);
    expect(config.previewPoolSize).toBe(2);
  });

  it('names every invalid setting in one ConfigError', () => {
    const load = () => loadConfig({ WEIR_JOB_UNRESPONSIVE_MS: '500', WEIR_PREVIEW_POOL_SIZE: 'many' });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/WEIR_JOB_UNRESPONSIVE_MS: .*1000/);
    expect(load).toThrow(/WEIR_PREVIEW_POOL_SIZE: /);
  });

  it('bounds the WebSocket settings', () => {
    expect(loadConfig({ WEIR_WS_IDLE_TIMEOUT_MS: '5000', WEIR_WS_MAX_SOCKETS_PER_KEY: '3' })).toMatchObject({
      wsIdleTimeoutMs: 5000,
      wsMaxSocketsPerKey: 3,
    });
    const load = () => loadConfig({ WEIR_WS_IDLE_TIMEOUT_MS: '10', WEIR_WS_MAX_SOCKETS_PER_KEY: '0' });
    expect(load).toThrow(/WEIR_WS_IDLE_TIMEOUT_MS: .*1000/);
    expect(load).toThrow(/WEIR_WS_MAX_SOCKETS_PER_KEY: /);
  });

  it('bounds the restart budget of a job', () => {
    expect(loadConfig({ WEIR_JOB_MAX_RESTARTS: '2', WEIR_JOB_RESTART_WINDOW_MS: '60000' })).toMatchObject({
      jobMaxRestarts: 2,
      jobRestartWindowMs: 60_000,
    });
    expect(() => loadConfig({ WEIR_JOB_MAX_RESTARTS: '-1' })).toThrow(/WEIR_JOB_MAX_RESTARTS: /);
    expect(() => loadConfig({ WEIR_JOB_RESTART_WINDOW_MS: '10' })).toThrow(/WEIR_JOB_RESTART_WINDOW_MS: .*1000/);
  });

  it('asks for what the Kubernetes runtime cannot do without', () => {
    expect(() => loadConfig({ WEIR_RUNTIME: 'kubernetes' })).toThrow(
      'WEIR_RUNTIME=kubernetes needs WEIR_K8S_STORAGE_DIR, WEIR_K8S_KAFKA_BOOTSTRAP, WEIR_K8S_KAFKA_USERNAME and WEIR_K8S_KAFKA_PASSWORD',
    );
    const kafka = loadConfig({
      WEIR_RUNTIME: 'kubernetes',
      WEIR_K8S_STORAGE_DIR: 's3://weir',
      WEIR_K8S_KAFKA_BOOTSTRAP: 'kafka:9093',
      WEIR_K8S_KAFKA_USERNAME: 'weir-gateway',
      WEIR_K8S_KAFKA_PASSWORD: 'pw',
    }).kubernetes!.kafka;
    // Authenticated, and over TLS unless told otherwise.
    expect(kafka).toEqual({
      bootstrapServers: 'kafka:9093',
      securityProtocol: 'SASL_SSL',
      admin: { mechanism: 'SCRAM-SHA-512', username: 'weir-gateway', password: 'pw' },
    });
  });

  it("takes the installation's Flink options, and refuses the ones Weir sets itself", () => {
    const k8s = {
      WEIR_RUNTIME: 'kubernetes',
      WEIR_K8S_STORAGE_DIR: 's3://weir',
      WEIR_K8S_KAFKA_BOOTSTRAP: 'kafka:9093',
      WEIR_K8S_KAFKA_USERNAME: 'weir-gateway',
      WEIR_K8S_KAFKA_PASSWORD: 'pw',
    };
    expect(loadConfig(k8s).kubernetes!.flinkConfig).toEqual({});
    const s3 = { 's3.endpoint': 'http://198.19.255.1:9000', 's3.path.style.access': 'true' };
    expect(loadConfig({ ...k8s, WEIR_K8S_FLINK_CONFIG: JSON.stringify(s3) }).kubernetes!.flinkConfig).toEqual(s3);

    expect(() => loadConfig({ ...k8s, WEIR_K8S_FLINK_CONFIG: '{s3.endpoint' })).toThrow('WEIR_K8S_FLINK_CONFIG: must be JSON');
    expect(() => loadConfig({ ...k8s, WEIR_K8S_FLINK_CONFIG: '{"s3.endpoint": 9000}' })).toThrow('string values');
    const limits = { 'taskmanager.memory.process.size': '64g', 'table.dynamic-table-options.enabled': 'true' };
    expect(() => loadConfig({ ...k8s, WEIR_K8S_FLINK_CONFIG: JSON.stringify(limits) })).toThrow(
      'WEIR_K8S_FLINK_CONFIG: Weir sets taskmanager.memory.process.size, table.dynamic-table-options.enabled itself',
    );
  });
});
