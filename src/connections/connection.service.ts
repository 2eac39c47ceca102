import type { Actor } from '../accounts/actor.js';
import { requireRole } from '../accounts/actor.js';
import { lockAccount } from '../accounts/account.repository.js';
import { insertWithinLimit } from '../accounts/object-limits.js';
import { checkTaskCount } from '../jobs/job-input.js';
import { assertTaskHeadroom, type JobService } from '../jobs/job.service.js';
import type { TaskSize } from '../jobs/job.table.js';
import type { Db } from '../platform/database.js';
import { ConflictError, NotFoundError, ValidationError } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import type { Logger } from '../platform/logger.js';
import { checkIdentifier } from '../platform/names.js';
import type { PageQuery } from '../platform/pagination.js';
import { withUniqueName } from '../platform/unique-violation.js';
import type { StreamStorage } from '../streams/stream-storage.js';
import * as streamRepo from '../streams/stream.repository.js';
import * as repo from './connection.repository.js';
import type { ConnectionRow, ConnectionType, PropertyValue } from './connection.table.js';
import { isSecretOption, validateConnectionProperties } from './connector-catalog.js';

/** Where an external system's address is given, per connector: checked against the platform's own. */
const SERVER_OPTIONS: Readonly<Record<string, string>> = { kafka: 'properties.bootstrap.servers' };

export interface CreateConnectionInput {
  readonly name: string;
  readonly connector: string;
  readonly type: ConnectionType;
  /** The stream's uuid (decoded from its global id by the caller). */
  readonly streamId: string;
  readonly properties?: unknown;
  readonly taskSize?: TaskSize | null;
  readonly taskCount?: number | null;
}

export interface UpdateConnectionInput {
  readonly name?: string | null;
  /** Replaces the properties. Secret options left out keep their stored values. */
  readonly properties?: unknown;
  readonly taskSize?: TaskSize | null;
  readonly taskCount?: number | null;
}

function asObject(value: unknown): Record<string, unknown> {
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw ValidationError.of(['input', 'properties'], 'must be a JSON object of option keys to values');
  }
  return value as Record<string, unknown>;
}

function knownSecrets(connector: string, secrets: Readonly<Record<string, PropertyValue>>): Record<string, PropertyValue> {
  return Object.fromEntries(Object.entries(secrets).filter(([key]) => isSecretOption(connector, key)));
}

export class ConnectionService {
  constructor(
    private readonly db: Db,
    private readonly jobs: JobService,
    private readonly logger: Logger,
    /** Knows the platform's own brokers, which no connection may name. */
    private readonly storage?: Pick<StreamStorage, 'platformServerNamed'>,
  ) {}

  /**
   * Tenants' connections reach external systems only: a connection to the platform's own
   * Kafka is refused (its ACLs would refuse the job too, later and less clearly).
   */
  private async refusePlatformServers(connector: string, properties: Readonly<Record<string, unknown>>): Promise<void> {
    const key = SERVER_OPTIONS[connector];
    const servers = key === undefined ? undefined : properties[key];
    if (typeof servers !== 'string' || !this.storage) return;
    const named = await this.storage.platformServerNamed(servers);
    if (named !== undefined) {
      throw ValidationError.of(
        ['input', 'properties', key!],
        `${named} is the platform's own Kafka, which connections may not use; to bring data into a stream, publish to it or use a SOURCE connection from your own Kafka`,
      );
    }
  }

  async create(actor: Actor | null, input: CreateConnectionInput): Promise<ConnectionRow> {
    const a = requireRole(actor, 'MEMBER');
    const name = checkIdentifier(['input', 'name'], input.name);
    const taskCount = checkTaskCount(['input', 'taskCount'], input.taskCount ?? 1);
    const properties = asObject(input.properties);
    const stream = await streamRepo.findStream(this.db, a.accountId, input.streamId);
    if (!stream) throw new NotFoundError('Stream', input.streamId);
    const validated = validateConnectionProperties({
      connector: input.connector,
      type: input.type,
      properties,
      streamFields: stream.fields.map((f) => f.name),
      taskSize: input.taskSize ?? 'S',
      path: ['input'],
    });
    await this.refusePlatformServers(input.connector, validated.properties);
    const row = await withUniqueName('connection', name, () =>
      insertWithinLimit(this.db, a.accountId, 'connections', async (trx) => {
        // Still there, and locked until the connection is in: it cannot be deleted or renamed meanwhile.
        if (!(await streamRepo.findStream(trx, a.accountId, stream.id, 'share'))) throw new NotFoundError('Stream', input.streamId);
        return repo.insertConnection(trx, {
          id: newId(),
          account_id: a.accountId,
          name,
          connector: input.connector,
          type: input.type,
          stream_id: stream.id,
          properties: validated.properties,
          secret_properties: validated.secretProperties,
          task_size: input.taskSize ?? 'S',
          task_count: taskCount,
        });
      }),
    );
    this.logger.info({ accountId: a.accountId, connectionId: row.id, connector: row.connector }, 'connection created');
    return row;
  }

  async get(actor: Actor | null, id: string): Promise<ConnectionRow> {
    const a = requireRole(actor, 'VIEWER');
    const row = await repo.findConnection(this.db, a.accountId, id);
    if (!row) throw new NotFoundError('Connection', id);
    return row;
  }

  async list(actor: Actor | null, page: PageQuery): Promise<ConnectionRow[]> {
    const a = requireRole(actor, 'VIEWER');
    return repo.listConnections(this.db, a.accountId, page);
  }

  async update(actor: Actor | null, id: string, input: UpdateConnectionInput): Promise<ConnectionRow> {
    const a = requireRole(actor, 'MEMBER');
    const name = input.name != null ? checkIdentifier(['input', 'name'], input.name) : undefined;
    const taskCount = input.taskCount != null ? checkTaskCount(['input', 'taskCount'], input.taskCount) : undefined;
    if (input.properties != null) {
      // Before the transaction (it may look host names up). The server list is never a
      // secret, so the new properties hold it whole.
      const connector = (await repo.findConnection(this.db, a.accountId, id))?.connector;
      if (connector) await this.refusePlatformServers(connector, asObject(input.properties));
    }
    return withUniqueName('connection', name, () =>
      this.db.transaction().execute(async (trx) => {
        // A new task count is checked only if the job is active: lock before reading
        // that, as activation does, or one could slip in between and count the old one.
        if (taskCount !== undefined) await lockAccount(trx, a.accountId);
        const current = await repo.findConnection(trx, a.accountId, id);
        if (!current) throw new NotFoundError('Connection', id);
        let validated: ReturnType<typeof validateConnectionProperties> | undefined;
        // A smaller task size is checked too: what the properties ask may no longer fit.
        const resized = input.taskSize != null && input.taskSize !== current.task_size;
        if (input.properties != null || resized) {
          const stream = await streamRepo.findStream(trx, a.accountId, current.stream_id);
          validated = validateConnectionProperties({
            connector: current.connector,
            type: current.type,
            // Secrets are write-only, so a client cannot send them back: omitted ones are
            // kept, unless the catalogue no longer knows them (a JAAS line of older Weirs).
            properties: {
              ...knownSecrets(current.connector, current.secret_properties),
              ...(input.properties != null ? asObject(input.properties) : current.properties),
            },
            streamFields: stream!.fields.map((f) => f.name),
            taskSize: input.taskSize ?? current.task_size,
            path: ['input'],
          });
        }
        if (taskCount !== undefined && current.desired_state === 'ACTIVE') {
          await assertTaskHeadroom(trx, a.accountId, taskCount - current.task_count);
        }
        const bumpSpec =
          validated !== undefined ||
          (input.taskSize != null && input.taskSize !== current.task_size) ||
          (taskCount !== undefined && taskCount !== current.task_count);
        const row = await repo.updateConnection(trx, a.accountId, id, {
          ...(name !== undefined ? { name } : {}),
          ...(validated ? { properties: validated.properties, secret_properties: validated.secretProperties } : {}),
          ...(input.taskSize != null ? { task_size: input.taskSize } : {}),
          ...(taskCount !== undefined ? { task_count: taskCount } : {}),
          bumpSpec,
        });
        return row!;
      }),
    );
  }

  /** Refused while active: deactivate first. */
  async delete(actor: Actor | null, id: string): Promise<ConnectionRow> {
    const a = requireRole(actor, 'MEMBER');
    return this.db.transaction().execute(async (trx) => {
      const current = await repo.findConnection(trx, a.accountId, id);
      if (!current) throw new NotFoundError('Connection', id);
      if (current.desired_state === 'ACTIVE') {
        throw new ConflictError(`Connection "${current.name}" is active; deactivate it before deleting it.`);
      }
      await repo.deleteConnection(trx, a.accountId, id);
      this.logger.info({ accountId: a.accountId, connectionId: id }, 'connection deleted');
      return current;
    });
  }

  async activate(actor: Actor | null, id: string): Promise<ConnectionRow> {
    await this.jobs.activate(actor, 'CONNECTION', id);
    return this.get(actor, id);
  }

  async deactivate(actor: Actor | null, id: string): Promise<ConnectionRow> {
    await this.jobs.deactivate(actor, 'CONNECTION', id);
    return this.get(actor, id);
  }
}
