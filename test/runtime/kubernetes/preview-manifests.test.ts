import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { previewManifests, type PreviewManifestOptions } from '../../../src/runtime/kubernetes/preview-manifests.js';
import { previewClusterOptions } from './fixtures.js';

const OPTIONS: PreviewManifestOptions = { ...previewClusterOptions(new KubeConfig()), name: 'weir-preview' };

type Resources = { requests: Record<string, string>; limits: Record<string, string> };

function resourcesOf(options: PreviewManifestOptions) {
  const m = previewManifests(options);
  const spec = m.flinkDeployment.spec as Record<string, any>;
  const mainContainer = (role: 'jobManager' | 'taskManager') => spec[role].podTemplate.spec.containers[0].resources as Resources;
  return {
    limitFactor: (spec.flinkConfiguration as Record<string, string>)['kubernetes.jobmanager.cpu.limit-factor'],
    jobManager: mainContainer('jobManager'),
    taskManager: mainContainer('taskManager'),
    sqlGateway: m.gatewayDeployment.spec.template.spec.containers[0].resources as Resources,
  };
}

describe('the preview session cluster’s CPU (WEIR_K8S_PREVIEW_CPU_LIMIT)', () => {
  it('gives every pod exactly its size by default', () => {
    const r = resourcesOf(OPTIONS);
    expect(r.limitFactor).toBe('1');
    for (const pod of [r.jobManager, r.taskManager, r.sqlGateway]) expect(pod.limits).toEqual(pod.requests);
    expect(r.jobManager.requests.cpu).toBe('500m');
  });

  it('lets the JobManager and the SQL Gateway burst to the limit, keeping their requests; TaskManagers keep exactly their size', () => {
    const r = resourcesOf({ ...OPTIONS, platformCpuLimit: 2 });
    // Flink writes the JobManager's limit itself, as its request times the factor.
    expect(r.limitFactor).toBe('4');
    expect(r.jobManager).toEqual({ requests: { cpu: '500m', memory: '1024Mi' }, limits: { cpu: '2000m', memory: '1024Mi' } });
    expect(r.sqlGateway).toEqual({ requests: { cpu: '500m', memory: '768Mi' }, limits: { cpu: '2000m', memory: '768Mi' } });
    expect(r.taskManager.limits).toEqual(r.taskManager.requests);
  });

  it('never limits below a request', () => {
    const r = resourcesOf({ ...OPTIONS, platformCpuLimit: 0.25 });
    expect(r.limitFactor).toBe('1');
    expect(r.sqlGateway.limits.cpu).toBe('500m');
  });
});

describe('the preview session cluster’s state', () => {
  it('names no checkpoint or savepoint directory: a preview task would open that filesystem (S3) as it deploys', () => {
    const configuration = (previewManifests(OPTIONS).flinkDeployment.spec as { flinkConfiguration: Record<string, string> }).flinkConfiguration;
    const directories = Object.keys(configuration).filter((key) => /checkpoint|savepoint/.test(key) && /dir/.test(key));
    expect(directories).toEqual([]);
    expect(configuration['execution.checkpointing.interval']).toBeUndefined();
  });
});

describe('the preview TaskManagers’ JVM', () => {
  const taskManagerOpts = (options: PreviewManifestOptions) =>
    (previewManifests(options).flinkDeployment.spec as { flinkConfiguration: Record<string, string> }).flinkConfiguration['env.java.opts.taskmanager']!.split(' ');

  it('loads the preview classes before it registers (the agent) and compiles with C1 only, after the installation’s own options', () => {
    const opts = taskManagerOpts({ ...OPTIONS, flinkConfig: { 'env.java.opts.taskmanager': '-Dfrom.installation=1' } });
    expect(opts).toEqual(['-Dfrom.installation=1', '-javaagent:/opt/weir/sql-runner.jar', '-XX:TieredStopAtLevel=1']);
    expect(taskManagerOpts(OPTIONS)).toEqual(['-javaagent:/opt/weir/sql-runner.jar', '-XX:TieredStopAtLevel=1']);
  });
});
