import type { KubernetesObject } from '@kubernetes/client-node';
import {
  JOB_MANAGER_SIZE,
  LABEL_ACCOUNT,
  TASK_SIZES,
  managedLabels,
  type EgressTarget,
  type TierLimits,
} from './kubernetes-options.js';

export const QUOTA_NAME = 'weir-quota';
export const LIMIT_RANGE_NAME = 'weir-limits';
export const NETWORK_POLICY_NAME = 'weir-flink';
export const FLINK_ROLE_BINDING_NAME = 'weir-flink';

export interface AccountNamespaceInput {
  readonly namespace: string;
  readonly accountId: string;
  readonly instance: string;
  readonly limits: TierLimits;
  readonly serviceAccountName: string;
  readonly flinkClusterRole: string;
  readonly operatorNamespace: string;
  readonly egress: readonly EgressTarget[];
}

const LARGEST_TASK = TASK_SIZES.L;
const cpu = (cores: number) => `${Math.round(cores * 1000)}m`;
const memory = (mi: number) => `${mi}Mi`;
const nameSelector = (namespace: string) => ({ matchLabels: { 'kubernetes.io/metadata.name': namespace } });

/** The Namespace alone: everything else in the list lives inside it. */
export function namespaceObject(input: AccountNamespaceInput): KubernetesObject {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: input.namespace, labels: { ...managedLabels(input.instance), [LABEL_ACCOUNT]: input.accountId } },
  };
}

/**
 * What an account namespace holds besides its jobs, in the order it is written. The
 * quota is sized for the tier at its worst case: every job's JobManager plus every task
 * at the largest task size, so any mix the API's own tier check allows fits.
 */
export function namespaceContents(input: AccountNamespaceInput): KubernetesObject[] {
  const { namespace, limits } = input;
  const labels = { ...managedLabels(input.instance), [LABEL_ACCOUNT]: input.accountId };
  const metadata = (name: string) => ({ name, namespace, labels });
  const cpuTotal = cpu(limits.maxActiveJobs * JOB_MANAGER_SIZE.cpu + limits.maxTaskCount * LARGEST_TASK.cpu);
  const memoryTotal = memory(limits.maxActiveJobs * JOB_MANAGER_SIZE.memoryMi + limits.maxTaskCount * LARGEST_TASK.memoryMi);
  const quota = {
    apiVersion: 'v1',
    kind: 'ResourceQuota',
    metadata: metadata(QUOTA_NAME),
    spec: {
      hard: {
        'count/flinkdeployments.flink.apache.org': String(limits.maxActiveJobs),
        pods: String(limits.maxActiveJobs + limits.maxTaskCount),
        'requests.cpu': cpuTotal,
        'limits.cpu': cpuTotal,
        'requests.memory': memoryTotal,
        'limits.memory': memoryTotal,
      },
    },
  };
  const limitRange = {
    apiVersion: 'v1',
    kind: 'LimitRange',
    metadata: metadata(LIMIT_RANGE_NAME),
    spec: {
      limits: [
        {
          type: 'Container',
          // Containers that state nothing (an init container, say) get the smallest size.
          default: { cpu: cpu(TASK_SIZES.S.cpu), memory: memory(TASK_SIZES.S.memoryMi) },
          defaultRequest: { cpu: cpu(TASK_SIZES.S.cpu), memory: memory(TASK_SIZES.S.memoryMi) },
          max: {
            cpu: cpu(Math.max(LARGEST_TASK.cpu, JOB_MANAGER_SIZE.cpu)),
            memory: memory(Math.max(LARGEST_TASK.memoryMi, JOB_MANAGER_SIZE.memoryMi)),
          },
        },
      ],
    },
  };
  const egressTargets = input.egress.map((target) => ({
    to: [
      target.cidr
        ? { ipBlock: { cidr: target.cidr } }
        : { namespaceSelector: nameSelector(target.namespace ?? namespace) },
    ],
    ports: target.ports.map((port) => ({ protocol: 'TCP', port })),
  }));
  const networkPolicy = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: metadata(NETWORK_POLICY_NAME),
    spec: {
      podSelector: {},
      policyTypes: ['Ingress', 'Egress'],
      // Nothing from outside the namespace, except the operator probing the JobManager's
      // REST port. Inside it, JobManager and TaskManagers must talk (RPC, blobs, shuffles).
      ingress: [
        { from: [{ podSelector: {} }] },
        { from: [{ namespaceSelector: nameSelector(input.operatorNamespace) }], ports: [{ protocol: 'TCP', port: 8081 }] },
      ],
      egress: [
        { to: [{ podSelector: {} }] },
        {
          to: [{ namespaceSelector: nameSelector('kube-system') }],
          ports: [
            { protocol: 'UDP', port: 53 },
            { protocol: 'TCP', port: 53 },
          ],
        },
        ...egressTargets,
      ],
    },
  };
  const serviceAccount = {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: metadata(input.serviceAccountName),
    automountServiceAccountToken: true,
  };
  // Bound to a ClusterRole from deploy/ rather than a Role written here: the gateway then
  // needs only `bind` on that one ClusterRole, not every permission Flink's pods hold.
  const roleBinding = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: metadata(FLINK_ROLE_BINDING_NAME),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: input.flinkClusterRole },
    subjects: [{ kind: 'ServiceAccount', name: input.serviceAccountName, namespace }],
  };
  return [quota, limitRange, networkPolicy, serviceAccount, roleBinding];
}
