import type { Actor } from '../accounts/actor.js';
import { requireRole } from '../accounts/actor.js';
import { checkTaskCount } from '../jobs/job-input.js';
import { assertTaskHeadroom, type JobService } from '../jobs/job.service.js';
import type { TaskSize } from '../jobs/job.table.js';
import type { Db } from '../platform/database.js';
import { ConflictError, NotFoundError, ValidationError } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import type { Logger } from '../platform/logger.js';
import { checkIdentifier } from '../platform/names.js';
import type { PageQuery } from '../platform/pagination.js';
import { isUniqueViolation } from '../platform/unique-violation.js';
import * as streamRepo from '../streams/stream.repository.js';
import * as repo from './connection.repository.js';
import type { ConnectionRow, ConnectionType } from './connection.table.js';
import { validateConnectionProperties } from './connector-catalog.js';

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

export class ConnectionService {
  constructor(
    private readonly db: Db,
    private readonly jobs: JobService,
    private readonly logger: Logger,
  ) {}

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
    try {
      const row = await repo.insertConnection(this.db, {
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
      this.logger.info({ accountId: a.accountId, connectionId: row.id, connector: row.connector }, 'connection created');
      return row;
    } catch (error) {
      if (isUniqueViolation(error)) throw new ConflictError(`A connection named "${name}" already exists.`, { field: ['input', 'name'] });
      throw error;
    }
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
    try {
      return await this.db.transaction().execute(async (trx) => {
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
            // Secrets are write-only, so a client cannot send them back: omitted ones are kept.
            properties: {
              ...current.secret_properties,
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
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw new ConflictError(`A connection named "${name}" already exists.`, { field: ['input', 'name'] });
      throw error;
    }
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
