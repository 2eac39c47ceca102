import { pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import {
  AclOperations,
  AclPermissionTypes,
  Admin,
  Connection,
  ResourcePatternTypes,
  ResourceTypes,
  alterUserScramCredentialsV0,
  type Acl,
  type AclOperationValue,
} from '@platformatic/kafka';
import type { Logger } from '../platform/logger.js';
import { clientOptions, saslClientProperties, type KafkaEndpoint, type StreamAccess } from './kafka-endpoint.js';
import { StreamStorageError } from './stream-storage.js';

/**
 * Kafka principals of tenants' code. Every job gets a SCRAM user of its own that may read
 * and write its account's topics (`weir.<account>.`), use its own consumer group and
 * transactional ids, and nothing else; each account's previews share a read-only one.
 * The broker enforces it (ACLs under `StandardAuthorizer`, no access without an ACL), so
 * Weir's SQL checks are no longer the only wall between accounts.
 *
 * Passwords are random, never stored by Weir outside the job's own spec (a 0600 file, or
 * a Secret on Kubernetes), and replaced each time a job is deployed.
 */
export interface JobPrincipalRef {
  readonly accountId: string;
  readonly id: string;
}

const pbkdf2Async = promisify(pbkdf2);
/** Kafka's minimum for SCRAM-SHA-512; more buys nothing for random 32-byte passwords. */
const SCRAM_ITERATIONS = 4096;
const SCRAM_SHA_512 = 2;
/** Kafka's error code for a SCRAM credential that is not there. */
const RESOURCE_NOT_FOUND = 91;
const MECHANISM = 'SCRAM-SHA-512';

export const topicPrefixOf = (accountId: string) => `weir.${accountId.toLowerCase()}.`;
export const jobUserOf = (jobId: string) => `weir-job-${jobId}`;
export const previewUserOf = (accountId: string) => `weir-preview-${accountId}`;
/** The consumer group and transactional-id prefix of a job. */
export const jobGroupOf = (jobId: string) => `weir-${jobId}`;
export const previewGroupOf = (accountId: string) => `weir-preview-${accountId}`;

export class KafkaPrincipals {
  readonly #endpoint: () => Promise<KafkaEndpoint>;
  readonly #log: Logger;
  #admin: { endpoint: KafkaEndpoint; admin: Admin } | undefined;
  /** Per account, in this process only: a restarted gateway issues a new password. */
  readonly #previews = new Map<string, Promise<StreamAccess>>();

  constructor(options: { endpoint: () => Promise<KafkaEndpoint>; logger: Logger }) {
    this.#endpoint = options.endpoint;
    this.#log = options.logger.child({ component: 'kafka-principals' });
  }

  /**
   * A fresh password for the job's principal and its ACLs (both idempotent): call on every
   * deployment of the job, before it starts, so each deployment holds new credentials.
   */
  async grantJob(job: JobPrincipalRef): Promise<StreamAccess> {
    const user = jobUserOf(job.id);
    const group = jobGroupOf(job.id);
    const access = await this.#grant(user, [
      ...acls(user, ResourceTypes.TOPIC, topicPrefixOf(job.accountId), 'PREFIXED', [AclOperations.READ, AclOperations.WRITE, AclOperations.DESCRIBE]),
      ...acls(user, ResourceTypes.GROUP, group, 'LITERAL', [AclOperations.READ, AclOperations.DESCRIBE]),
      ...acls(user, ResourceTypes.TRANSACTIONAL_ID, group, 'PREFIXED', [AclOperations.WRITE, AclOperations.DESCRIBE]),
    ]);
    this.#log.info({ accountId: job.accountId, jobId: job.id, user }, 'job credentials issued');
    return access;
  }

  /** Removes the job's principal and its ACLs; absent ones are fine. */
  async revokeJob(job: JobPrincipalRef): Promise<void> {
    await this.#revoke(jobUserOf(job.id));
    this.#log.info({ accountId: job.accountId, jobId: job.id }, 'job credentials revoked');
  }

  /** Read-only access to the account's topics, shared by its previews (made once per process). */
  grantPreview(accountId: string): Promise<StreamAccess> {
    let pending = this.#previews.get(accountId);
    if (!pending) {
      const user = previewUserOf(accountId);
      pending = this.#grant(user, [
        ...acls(user, ResourceTypes.TOPIC, topicPrefixOf(accountId), 'PREFIXED', [AclOperations.READ, AclOperations.DESCRIBE]),
        ...acls(user, ResourceTypes.GROUP, previewGroupOf(accountId), 'LITERAL', [AclOperations.READ, AclOperations.DESCRIBE]),
      ]).catch((error: unknown) => {
        this.#previews.delete(accountId);
        throw error;
      });
      this.#previews.set(accountId, pending);
    }
    return pending;
  }

  async close(): Promise<void> {
    const admin = this.#admin;
    this.#admin = undefined;
    await admin?.admin.close().catch(() => undefined);
  }

  async #grant(user: string, grants: Acl[]): Promise<StreamAccess> {
    const endpoint = await this.#endpointOrFail();
    const password = randomBytes(32).toString('base64url');
    const salt = randomBytes(32);
    const saltedPassword = await pbkdf2Async(password, salt, SCRAM_ITERATIONS, 64, 'sha512');
    try {
      await this.#alterScram(endpoint, [], [{ name: user, mechanism: SCRAM_SHA_512, iterations: SCRAM_ITERATIONS, salt, saltedPassword }]);
      await this.#adminFor(endpoint).createAcls({ creations: grants });
    } catch (error) {
      throw new StreamStorageError(`issuing Kafka credentials for ${user} failed: ${(error as Error).message}`, { cause: error });
    }
    return {
      bootstrapServers: endpoint.bootstrapServers,
      clientProperties: saslClientProperties(endpoint.securityProtocol, { mechanism: MECHANISM, username: user, password }),
    };
  }

  async #revoke(user: string): Promise<void> {
    const endpoint = await this.#endpointOrFail();
    try {
      await this.#adminFor(endpoint).deleteAcls({
        filters: [
          {
            resourceType: ResourceTypes.ANY,
            resourceName: null,
            resourcePatternType: ResourcePatternTypes.ANY,
            principal: `User:${user}`,
            host: null,
            operation: AclOperations.ANY,
            permissionType: AclPermissionTypes.ANY,
          },
        ],
      });
      await this.#alterScram(endpoint, [{ name: user, mechanism: SCRAM_SHA_512 }], []).catch((error: unknown) => {
        // The user had no credential (never granted, or revoked before): nothing to do.
        const results = (error as { response?: { results?: { errorCode: number }[] } }).response?.results ?? [];
        if (results.length === 0 || results.some((result) => result.errorCode !== 0 && result.errorCode !== RESOURCE_NOT_FOUND)) throw error;
      });
    } catch (error) {
      throw new StreamStorageError(`revoking Kafka credentials of ${user} failed: ${describe(error)}`, { cause: error });
    }
  }

  async #endpointOrFail(): Promise<KafkaEndpoint> {
    try {
      return await this.#endpoint();
    } catch (error) {
      throw new StreamStorageError(`the Kafka broker is not available: ${(error as Error).message}`, { cause: error });
    }
  }

  #adminFor(endpoint: KafkaEndpoint): Admin {
    if (this.#admin?.endpoint !== endpoint) {
      void this.#admin?.admin.close().catch(() => undefined);
      const admin = new Admin({ ...clientOptions(endpoint), clientId: 'weir-principals', connectTimeout: 2000, requestTimeout: 5000, retries: 3 });
      this.#admin = { endpoint, admin };
    }
    return this.#admin.admin;
  }

  /**
   * AlterUserScramCredentials has no high-level call in the client library: one request on
   * a connection of its own, to the first bootstrap server (a broker forwards it to the
   * controller).
   */
  async #alterScram(
    endpoint: KafkaEndpoint,
    deletions: Parameters<typeof alterUserScramCredentialsV0.api.async>[1],
    upsertions: Parameters<typeof alterUserScramCredentialsV0.api.async>[2],
  ): Promise<void> {
    const options = clientOptions(endpoint);
    const [host, port] = splitHostPort(options.bootstrapBrokers[0]!);
    const connection = new Connection('weir-principals', { connectTimeout: 2000, requestTimeout: 5000, sasl: options.sasl, ...(options.tls ? { tls: options.tls } : {}) });
    try {
      await connection.connect(host, port);
      await alterUserScramCredentialsV0.api.async(connection, deletions, upsertions);
    } finally {
      await connection.close().catch(() => undefined);
    }
  }
}

function acls(
  user: string,
  resourceType: Acl['resourceType'],
  resourceName: string,
  pattern: 'LITERAL' | 'PREFIXED',
  operations: readonly AclOperationValue[],
): Acl[] {
  return operations.map((operation) => ({
    resourceType,
    resourceName,
    resourcePatternType: ResourcePatternTypes[pattern],
    principal: `User:${user}`,
    host: '*',
    operation,
    permissionType: AclPermissionTypes.ALLOW,
  }));
}

function splitHostPort(server: string): [string, number] {
  const colon = server.lastIndexOf(':');
  const host = server.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  return [host, Number(server.slice(colon + 1))];
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const nested = (error as Error & { errors?: unknown[] }).errors;
    return nested?.length ? `${error.message} (${nested.map(describe).join('; ')})` : error.message;
  }
  return String(error);
}
