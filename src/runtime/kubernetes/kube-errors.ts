import { ApiException } from '@kubernetes/client-node';
import { RuntimeQuotaError } from '../runtime.js';

/** A Kubernetes `Status` as the apiserver returns it for a failed request. */
export interface KubeStatus {
  readonly code?: number;
  readonly reason?: string;
  readonly message?: string;
}

export function statusOf(error: unknown): KubeStatus | undefined {
  if (!(error instanceof ApiException)) return undefined;
  let body: unknown = error.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      return { code: error.code, message: body as string };
    }
  }
  const status = (body ?? {}) as KubeStatus;
  return { code: error.code, reason: status.reason, message: status.message };
}

export const isNotFound = (error: unknown) => statusOf(error)?.code === 404;
export const isConflict = (error: unknown) => statusOf(error)?.code === 409;

/** Names a person understands for the resources of an account's quota. */
const RESOURCE_NAMES: Record<string, string> = {
  'count/flinkdeployments.flink.apache.org': 'active jobs',
  pods: 'pods',
  'requests.cpu': 'CPU',
  'limits.cpu': 'CPU',
  'requests.memory': 'memory',
  'limits.memory': 'memory',
};

/**
 * The account's namespace quota refused an object. Permanent for this spec: the job
 * fails with a reason that names what ran out, and is not retried until it changes.
 */
export class KubernetesQuotaError extends RuntimeQuotaError {
  override readonly name = 'KubernetesQuotaError';
}

/**
 * Parses `exceeded quota: weir-quota, requested: a=1,b=2, used: a=2,b=0, limited: a=2,b=4`
 * (the ResourceQuota admission plugin's wording) into a readable reason.
 */
export function quotaErrorOf(error: unknown, what: string): KubernetesQuotaError | undefined {
  const status = statusOf(error);
  if (status?.code !== 403 || !status.message?.includes('exceeded quota')) return undefined;
  const match = /requested: (.*?), used: (.*?), limited: (.*)$/.exec(status.message);
  if (!match) {
    return new KubernetesQuotaError(`The account's Kubernetes quota does not allow ${what}: ${status.message}`, []);
  }
  const pairs = (text: string) =>
    new Map(text.split(',').map((pair) => pair.split('=') as [string, string]).filter((p) => p.length === 2));
  const requested = pairs(match[1]!);
  const used = pairs(match[2]!);
  const limited = pairs(match[3]!);
  const exceeded = [...requested.keys()].map((resource) => ({
    resource,
    requested: requested.get(resource)!,
    used: used.get(resource) ?? '0',
    limited: limited.get(resource) ?? '?',
  }));
  const parts = exceeded.map(
    (e) => `${RESOURCE_NAMES[e.resource] ?? e.resource}: ${e.used} of ${e.limited} in use, ${e.requested} more needed`,
  );
  return new KubernetesQuotaError(`The account's quota does not allow ${what} (${parts.join('; ')}).`, exceeded);
}

/** A short description of any error, for logs and transient-failure messages. */
export function describe(error: unknown): string {
  const status = statusOf(error);
  if (status) return `HTTP ${status.code ?? '?'}: ${status.message ?? status.reason ?? 'no message'}`;
  return error instanceof Error ? error.message : String(error);
}
