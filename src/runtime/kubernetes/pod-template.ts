import type { PodSize } from './kubernetes-options.js';

/** The official Flink image's `flink` user (and group). */
const FLINK_UID = 9999;

/**
 * Every Flink pod Weir writes (jobs, the preview session cluster, its SQL Gateway) runs as
 * the image's `flink` user, never root, under the runtime's default seccomp profile:
 * what the `restricted` Pod Security Standard asks for.
 */
export const podSecurityContext = {
  runAsNonRoot: true,
  runAsUser: FLINK_UID,
  runAsGroup: FLINK_UID,
  fsGroup: FLINK_UID,
  seccompProfile: { type: 'RuntimeDefault' },
} as const;

/** No privilege escalation, no Linux capabilities. */
export const containerSecurityContext = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } as const;

/** A pod size as Kubernetes quantities: `{ cpu: '500m', memory: '768Mi' }`. */
const quantity = (size: PodSize) => ({ cpu: `${Math.round(size.cpu * 1000)}m`, memory: `${size.memoryMi}Mi` });

/**
 * Requests equal to limits: a pod gets exactly its size (Guaranteed QoS). With `cpuLimit`
 * (cores, above the size's CPU) the pod may use idle CPU up to it (Burstable QoS).
 */
export const resources = (size: PodSize, cpuLimit?: number) => ({
  requests: quantity(size),
  limits: quantity({ ...size, cpu: Math.max(size.cpu, cpuLimit ?? 0) }),
});
