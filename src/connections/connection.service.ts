import type { Actor } from '../accounts/actor.js';
import { deleteJobSnapshots } from '../jobs/snapshot.repository.js';
import { requireRole } from '../accounts/actor.js';
import { lockAccount } from '../accounts/account.repository.js';
import { insertWithinLimit } from '../accounts/object-limits.js';
import { checkCheckpointInterval, checkTaskCount } from '../jobs/job-input.js';
import { assertTaskHeadroom, type ActivateOptions, type JobService } from '../jobs/job.service.js';
import type { DeliveryGuarantee, TaskSize } from '../jobs/job.table.js';
import type { Db } from '../platform/database.js';
import { ConflictError, ConnectionCheckError, NotFoundError, ValidationError } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import type { Logger } from '../platform/logger.js';
import { checkIdentifier } from '../platform/names.js';
import type { PageQuery } from '../platform/pagination.js';
import { withUniqueName } from '../platform/unique-violation.js';
import type { StreamStorage } from '../streams/stream-storage.js';
import * as streamRepo from '../streams/stream.repository.js';
import * as repo from './connection.repository.js';
import type { ConnectionRow, ConnectionType, PropertyValue } from './connection.table.js';
import { deliveryGuaranteeOf, findConnector, isSecretOption, validateConnectionProperties } from './connector-catalog.js';
import { platformServerNamed } from '../streams/platform-servers.js';
import { serverOf as serverOfConnectionProperties } from './connectors/postgres-server.js';
import { CdcCleanupError, cdcCleanupOf, dropCdcObjects } from './postgres-admin.js';
import {
  checkPostgres,
  isCheck,
  isPostgresConnector,
  readTableSchema,
  withServer,
  type CheckResult,
  type Login,
  type PostgresConnector,
  type TableSchema,
} from './postgres-inspect.js';

const serverOfConnection = (connection: ConnectionRow) => serverOfConnectionProperties(connection.properties) ?? 'its server';

/** The platform's own servers, which no connection may name. */
export interface PlatformServers {
  /** Knows the platform's brokers. */
  readonly storage?: Pick<StreamStorage, 'platformServerNamed'> | undefined;
  /** `host:port` of the platform's database. */
  readonly database?: string | undefined;
}

export interface CreateConnectionInput {
  readonly name: string;
  readonly connector: string;
  readonly type: ConnectionType;
  /** The stream's uuid (decoded from its global id by the caller). */
  readonly streamId: string;
  readonly properties?: unknown;
  readonly taskSize?: TaskSize | null;
  readonly taskCount?: number | null;
  /** Absent: EXACTLY_ONCE where the connector can (deliveryGuaranteeOf). */
  readonly deliveryGuarantee?: DeliveryGuarantee | null;
  readonly checkpointIntervalMs?: number | null;
}

export interface TestConnectionInput {
  readonly connector: string;
  /** The stream's uuid: its fields are compared with the table's. */
  readonly streamId?: string | null;
  readonly properties?: unknown;
}

const notTestable = (path: string[], connector: string) =>
  ValidationError.of(path, `only Postgres connections (postgres-cdc, jdbc) are checked against their server, not ${JSON.stringify(connector)}`);

export interface UpdateConnectionInput {
  readonly name?: string | null;
  /** Replaces the properties. Secret options left out keep their stored values. */
  readonly properties?: unknown;
  readonly taskSize?: TaskSize | null;
  readonly taskCount?: number | null;
  readonly deliveryGuarantee?: DeliveryGuarantee | null;
  readonly checkpointIntervalMs?: number | null;
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
    private readonly platform: PlatformServers = {},
  ) {}

  /**
   * Tenants' connections reach external systems only: a connection to the platform's own
   * Kafka is refused (its ACLs would refuse the job too, later and less clearly), and so is
   * one to the platform's database.
   */
  private async refusePlatformServers(connector: string, properties: Readonly<Record<string, unknown>>): Promise<void> {
    const definition = findConnector(connector);
    const servers = definition?.serverOf?.(properties);
    if (servers === undefined) return;
    const path = ['input', 'properties', definition!.serverKey ?? 'hostname'];
    const broker = await this.platform.storage?.platformServerNamed(servers);
    if (broker !== undefined) {
      throw ValidationError.of(
        path,
        `${broker} is the platform's own Kafka, which connections may not use; to bring data into a stream, publish to it or use a SOURCE connection from your own Kafka`,
      );
    }
    const database = this.platform.database ? await platformServerNamed(servers, [this.platform.database]) : undefined;
    if (database !== undefined) {
      throw ValidationError.of(path, `${database} is the platform's own database, which connections may not use`);
    }
  }

  async create(actor: Actor | null, input: CreateConnectionInput): Promise<ConnectionRow> {
    const a = requireRole(actor, 'MEMBER');
    const name = checkIdentifier(['input', 'name'], input.name);
    const taskCount = checkTaskCount(['input', 'taskCount'], input.taskCount ?? 1);
    const interval = checkCheckpointInterval(['input', 'checkpointIntervalMs'], input.checkpointIntervalMs) ?? null;
    const properties = asObject(input.properties);
    const stream = await streamRepo.findStream(this.db, a.accountId, input.streamId);
    if (!stream) throw new NotFoundError('Stream', input.streamId);
    const delivery = deliveryGuaranteeOf(
      input.connector,
      { type: input.type, primaryKey: stream.primary_key },
      input.deliveryGuarantee,
      ['input', 'deliveryGuarantee'],
    );
    const validated = validateConnectionProperties({
      connector: input.connector,
      type: input.type,
      properties,
      streamFields: stream.fields.map((f) => f.name),
      streamKind: stream.kind,
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
          delivery_guarantee: delivery,
          checkpoint_interval_ms: interval,
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
    const interval = checkCheckpointInterval(['input', 'checkpointIntervalMs'], input.checkpointIntervalMs);
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
            streamKind: stream!.kind,
            taskSize: input.taskSize ?? current.task_size,
            path: ['input'],
          });
        }
        if (taskCount !== undefined && current.desired_state === 'ACTIVE') {
          await assertTaskHeadroom(trx, a.accountId, taskCount - current.task_count);
        }
        let delivery: DeliveryGuarantee | undefined;
        if (input.deliveryGuarantee != null) {
          const stream = await streamRepo.findStream(trx, a.accountId, current.stream_id);
          delivery = deliveryGuaranteeOf(
            current.connector,
            { type: current.type, primaryKey: stream!.primary_key },
            input.deliveryGuarantee,
            ['input', 'deliveryGuarantee'],
          );
        }
        // New external properties or delivery: the old state may not fit them.
        const newGeneration = validated !== undefined || (delivery !== undefined && delivery !== current.delivery_guarantee);
        const bumpSpec =
          newGeneration ||
          (input.taskSize != null && input.taskSize !== current.task_size) ||
          (taskCount !== undefined && taskCount !== current.task_count) ||
          (interval !== undefined && interval !== current.checkpoint_interval_ms);
        const row = await repo.updateConnection(trx, a.accountId, id, {
          ...(name !== undefined ? { name } : {}),
          ...(validated ? { properties: validated.properties, secret_properties: validated.secretProperties } : {}),
          ...(input.taskSize != null ? { task_size: input.taskSize } : {}),
          ...(taskCount !== undefined ? { task_count: taskCount } : {}),
          ...(delivery !== undefined ? { delivery_guarantee: delivery } : {}),
          ...(interval !== undefined ? { checkpoint_interval_ms: interval } : {}),
          bumpSpec,
          newGeneration,
        });
        return row!;
      }),
    );
  }

  /**
   * Refused while active: deactivate first. A `postgres-cdc` connection's replication slot
   * (and the publication Weir made) go first, on the source server: a slot nobody reads
   * keeps the server's WAL forever. If they cannot be dropped the connection stays, with
   * the server's reason, unless the caller keeps the slot (and drops it themselves).
   */
  async delete(actor: Actor | null, id: string, options: { keepReplicationSlot?: boolean } = {}): Promise<ConnectionRow> {
    const a = requireRole(actor, 'MEMBER');
    const found = await repo.findConnection(this.db, a.accountId, id);
    if (!found) throw new NotFoundError('Connection', id);
    if (found.connector === 'postgres-cdc' && found.desired_state !== 'ACTIVE' && !options.keepReplicationSlot) {
      await this.dropReplicationSlot(found);
    }
    return this.db.transaction().execute(async (trx) => {
      const current = await repo.findConnection(trx, a.accountId, id);
      if (!current) throw new NotFoundError('Connection', id);
      if (current.desired_state === 'ACTIVE') {
        throw new ConflictError(`Connection "${current.name}" is active; deactivate it before deleting it.`);
      }
      await repo.deleteConnection(trx, a.accountId, id);
      // Its savepoints' files go with the rest of its state (the reconciler discards it).
      await deleteJobSnapshots(trx, a.accountId, id);
      this.logger.info({ accountId: a.accountId, connectionId: id }, 'connection deleted');
      return current;
    });
  }

  /**
   * The columns and primary key of the Postgres table a `postgres-cdc` or `jdbc`
   * connection with these properties would use, as a stream's fields. Changes nothing.
   */
  async sourceSchema(actor: Actor | null, connector: string, rawProperties: unknown): Promise<TableSchema> {
    requireRole(actor, 'MEMBER');
    const login = await this.postgresLogin(connector, rawProperties);
    const outcome = await withServer(login, (client, server) => readTableSchema(client, server.schema, server.table));
    if (isCheck(outcome)) throw ValidationError.of(['properties', outcome.name === 'LOGIN' ? 'username' : 'hostname'], outcome.message);
    if (!outcome) throw ValidationError.of(['properties', 'table-name'], `there is no such table that ${String(login.properties['username'])} can see`);
    if (outcome.unmappable.length > 0) {
      throw new ValidationError(
        outcome.unmappable.map((u) => ({
          path: ['properties', 'table-name'],
          message: `column ${u.column}: Weir has no Flink type for ${u.type}; leave it out of the table the connection reads, or change its type`,
        })),
      );
    }
    return outcome;
  }

  /**
   * Every check of a Postgres connection (stored, or about to be created) against its
   * server: reachable, login, table, types, and what the connector needs. Changes nothing.
   */
  async test(actor: Actor | null, target: { id: string } | { input: TestConnectionInput }): Promise<CheckResult[]> {
    const a = requireRole(actor, 'MEMBER');
    if ('id' in target) {
      const row = await repo.findConnection(this.db, a.accountId, target.id);
      if (!row) throw new NotFoundError('Connection', target.id);
      const stream = await streamRepo.findStream(this.db, a.accountId, row.stream_id);
      if (!isPostgresConnector(row.connector)) throw notTestable(['id'], row.connector);
      return checkPostgres({
        connector: row.connector,
        connectionId: row.id,
        properties: row.properties,
        secretProperties: row.secret_properties,
        ...(stream ? { stream: { fields: stream.fields, primaryKey: stream.primary_key } } : {}),
      });
    }
    const { input } = target;
    const stream = input.streamId ? await streamRepo.findStream(this.db, a.accountId, input.streamId) : undefined;
    if (input.streamId && !stream) throw new NotFoundError('Stream', input.streamId);
    const login = await this.postgresLogin(input.connector, input.properties, stream?.fields.map((f) => f.name));
    return checkPostgres({
      connector: input.connector as PostgresConnector,
      ...login,
      ...(stream ? { stream: { fields: stream.fields, primaryKey: stream.primary_key } } : {}),
    });
  }

  /** Validated properties of a Postgres connector, never the platform's own database. */
  private async postgresLogin(connector: string, rawProperties: unknown, streamFields: readonly string[] = []): Promise<Login> {
    if (!isPostgresConnector(connector)) throw notTestable(['connector'], connector);
    const definition = findConnector(connector)!;
    const validated = validateConnectionProperties({
      connector,
      type: definition.types[0]!,
      properties: asObject(rawProperties),
      streamFields,
      taskSize: 'S',
    });
    await this.refusePlatformServers(connector, validated.properties);
    return validated;
  }

  private async dropReplicationSlot(connection: ConnectionRow): Promise<void> {
    const cleanup = cdcCleanupOf(connection.id, connection.properties);
    try {
      await dropCdcObjects({ properties: connection.properties, secretProperties: connection.secret_properties }, cleanup);
    } catch (error) {
      if (!(error instanceof CdcCleanupError)) throw error;
      const server = serverOfConnection(connection);
      throw new ConflictError(
        `Connection "${connection.name}" is kept: its replication slot ${cleanup.slot} on ${server} could not be dropped (${error.message}). ` +
          `Fix the server and delete again, or delete with keepReplicationSlot: true and drop the slot yourself (SELECT pg_drop_replication_slot('${cleanup.slot}')).`,
        { replicationSlot: cleanup.slot, server },
      );
    }
    this.logger.info({ accountId: connection.account_id, connectionId: connection.id, slot: cleanup.slot }, 'replication slot dropped');
  }

  /**
   * A Postgres connection is checked against its server first (testConnection's checks):
   * one that could not start is refused with CONNECTION_CHECK_FAILED, naming the failed
   * checks, rather than left to fail in Flink with a stack trace.
   */
  async activate(actor: Actor | null, id: string, options: ActivateOptions = {}): Promise<ConnectionRow> {
    const a = requireRole(actor, 'MEMBER');
    const current = await repo.findConnection(this.db, a.accountId, id);
    if (current && current.desired_state !== 'ACTIVE' && isPostgresConnector(current.connector)) {
      const failed = (await this.test(actor, { id })).filter((check) => !check.passed);
      if (failed.length > 0) throw new ConnectionCheckError(current.name, failed);
    }
    await this.jobs.activate(actor, 'CONNECTION', id, options);
    return this.get(actor, id);
  }

  async deactivate(actor: Actor | null, id: string): Promise<ConnectionRow> {
    await this.jobs.deactivate(actor, 'CONNECTION', id);
    return this.get(actor, id);
  }
}
