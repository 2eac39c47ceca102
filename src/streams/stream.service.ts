import type { Actor } from '../accounts/actor.js';
import { requireRole } from '../accounts/actor.js';
import { insertWithinLimit } from '../accounts/object-limits.js';
import type { Db } from '../platform/database.js';
import { ConflictError, NotFoundError, ValidationError, type ValidationProblem } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import type { Logger } from '../platform/logger.js';
import { checkIdentifier } from '../platform/names.js';
import type { PageQuery } from '../platform/pagination.js';
import { withUniqueName } from '../platform/unique-violation.js';
import { isCompatibleWidening, parseFlinkType } from './flink-types.js';
import * as repo from './stream.repository.js';
import type { StreamField, StreamKind, StreamRow } from './stream.table.js';
import type { ConnectionRow } from '../connections/connection.table.js';
import type { PipelineRow } from '../pipelines/pipeline.table.js';

export const MAX_FIELDS = 256;

export interface StreamFieldInput {
  readonly name: string;
  readonly type: string;
  readonly nullable?: boolean | null;
}

export interface CreateStreamInput {
  readonly name: string;
  readonly kind: StreamKind;
  readonly fields: readonly StreamFieldInput[];
  readonly primaryKey?: readonly string[] | null;
}

export interface UpdateStreamInput {
  readonly name?: string | null;
  readonly fields?: readonly StreamFieldInput[] | null;
}

function checkFields(inputs: readonly StreamFieldInput[], primaryKey: readonly string[]): StreamField[] {
  const problems: ValidationProblem[] = [];
  if (inputs.length === 0) problems.push({ path: ['input', 'fields'], message: 'a stream needs at least one field' });
  if (inputs.length > MAX_FIELDS) problems.push({ path: ['input', 'fields'], message: `at most ${MAX_FIELDS} fields` });
  const seen = new Set<string>();
  const fields: StreamField[] = [];
  inputs.forEach((input, index) => {
    const path = ['input', 'fields', index];
    try {
      checkIdentifier([...path, 'name'], input.name);
    } catch (error) {
      problems.push(...(error as ValidationError).problems);
      return;
    }
    if (seen.has(input.name.toLowerCase())) {
      problems.push({ path: [...path, 'name'], message: `duplicate field "${input.name}"` });
    }
    seen.add(input.name.toLowerCase());
    try {
      const parsed = parseFlinkType(input.type);
      // Flink makes primary-key columns NOT NULL; the stored schema says so.
      const nullable = !primaryKey.includes(input.name) && parsed.nullable && input.nullable !== false;
      fields.push({ name: input.name, type: parsed.type, nullable });
    } catch (error) {
      problems.push({ path: [...path, 'type'], message: (error as Error).message });
    }
  });
  if (problems.length) throw new ValidationError(problems);
  return fields;
}

function checkPrimaryKey(kind: StreamKind, primaryKey: readonly string[], fieldNames: readonly string[]): string[] {
  const path = ['input', 'primaryKey'];
  if (kind === 'CHANGE' && primaryKey.length === 0) {
    throw ValidationError.of(path, 'a CHANGE stream needs a primary key (the fields that identify a row)');
  }
  if (kind === 'APPEND' && primaryKey.length > 0) {
    throw ValidationError.of(path, 'an APPEND stream has no primary key; use kind CHANGE for keyed updates');
  }
  const problems: ValidationProblem[] = [];
  primaryKey.forEach((key, index) => {
    if (!fieldNames.includes(key)) problems.push({ path: [...path, index], message: `"${key}" is not a field of the stream` });
    if (primaryKey.indexOf(key) !== index) problems.push({ path: [...path, index], message: `"${key}" is listed twice` });
  });
  if (problems.length) throw new ValidationError(problems);
  return [...primaryKey];
}

/** Compatible evolution: existing fields keep their place and name, types only widen. */
function checkCompatible(current: readonly StreamField[], next: readonly StreamField[], primaryKey: readonly string[]) {
  const problems: ValidationProblem[] = [];
  current.forEach((field, index) => {
    const path = ['input', 'fields', index];
    const candidate = next[index];
    if (!candidate) {
      problems.push({ path: ['input', 'fields'], message: `field "${field.name}" cannot be removed` });
    } else if (candidate.name !== field.name) {
      problems.push({ path: [...path, 'name'], message: `field "${field.name}" cannot be renamed or moved` });
    } else if (!isCompatibleWidening(field.type, candidate.type)) {
      problems.push({ path: [...path, 'type'], message: `${field.type} cannot change to ${candidate.type}` });
    } else if (field.nullable && !candidate.nullable && !primaryKey.includes(field.name)) {
      problems.push({ path: [...path, 'nullable'], message: `field "${field.name}" cannot become NOT NULL` });
    }
  });
  next.slice(current.length).forEach((field, offset) => {
    if (!field.nullable) {
      problems.push({
        path: ['input', 'fields', current.length + offset, 'nullable'],
        message: `new field "${field.name}" must be nullable (existing records have no value for it)`,
      });
    }
  });
  if (problems.length) throw new ValidationError(problems);
}

export class StreamService {
  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
  ) {}

  async create(actor: Actor | null, input: CreateStreamInput): Promise<StreamRow> {
    const a = requireRole(actor, 'MEMBER');
    const name = checkIdentifier(['input', 'name'], input.name);
    const primaryKey = input.primaryKey ?? [];
    const fields = checkFields(input.fields, primaryKey);
    checkPrimaryKey(input.kind, primaryKey, fields.map((f) => f.name));
    const row = await withUniqueName('stream', name, () =>
      insertWithinLimit(this.db, a.accountId, 'streams', (trx) =>
        repo.insertStream(trx, { id: newId(), account_id: a.accountId, name, kind: input.kind, fields, primary_key: [...primaryKey] }),
      ),
    );
    this.logger.info({ accountId: a.accountId, streamId: row.id }, 'stream created');
    return row;
  }

  async get(actor: Actor | null, id: string): Promise<StreamRow> {
    const a = requireRole(actor, 'VIEWER');
    const row = await repo.findStream(this.db, a.accountId, id);
    if (!row) throw new NotFoundError('Stream', id);
    return row;
  }

  async list(actor: Actor | null, page: PageQuery): Promise<StreamRow[]> {
    const a = requireRole(actor, 'VIEWER');
    return repo.listStreams(this.db, a.accountId, page);
  }

  async byIds(actor: Actor | null, ids: readonly string[]): Promise<StreamRow[]> {
    const a = requireRole(actor, 'VIEWER');
    return repo.findStreamsByIds(this.db, a.accountId, ids);
  }

  /** Pipelines that read or write each stream, by stream id (streams no pipeline uses are left out). */
  async pipelinesOf(actor: Actor | null, streamIds: readonly string[]): Promise<Map<string, PipelineRow[]>> {
    const a = requireRole(actor, 'VIEWER');
    return groupBy(await repo.pipelinesUsingStreams(this.db, a.accountId, streamIds), (row) => row.stream_id);
  }

  /** Connections that feed or drain each stream, by stream id. */
  async connectionsOf(actor: Actor | null, streamIds: readonly string[]): Promise<Map<string, ConnectionRow[]>> {
    const a = requireRole(actor, 'VIEWER');
    return groupBy(await repo.connectionsUsingStreams(this.db, a.accountId, streamIds), (row) => row.stream_id);
  }

  async update(actor: Actor | null, id: string, input: UpdateStreamInput): Promise<StreamRow> {
    const a = requireRole(actor, 'MEMBER');
    const name = input.name != null ? checkIdentifier(['input', 'name'], input.name) : undefined;
    return this.db.transaction().execute(async (trx) => {
      // Locked first, so that the users checked below include any being linked right now.
      const current = await repo.findStream(trx, a.accountId, id, 'update');
      if (!current) throw new NotFoundError('Stream', id);
      let fields: StreamField[] | undefined;
      if (input.fields != null) {
        fields = checkFields(input.fields, current.primary_key);
        checkCompatible(current.fields, fields, current.primary_key);
      }
      if (name !== undefined && name !== current.name) {
        const users = await repo.streamUsers(trx, id);
        if (users.pipelines.length + users.connections.length > 0) {
          throw new ConflictError(`Stream "${current.name}" cannot be renamed while it is used (${describeUsers(users)}).`, users);
        }
      }
      const row = await withUniqueName('stream', name, () =>
        repo.updateStream(trx, a.accountId, id, { ...(name !== undefined ? { name } : {}), ...(fields !== undefined ? { fields } : {}) }),
      );
      if (!row) throw new NotFoundError('Stream', id);
      return row;
    });
  }

  /** Refused while a pipeline or connection uses the stream, naming them. */
  async delete(actor: Actor | null, id: string): Promise<StreamRow> {
    const a = requireRole(actor, 'MEMBER');
    return this.db.transaction().execute(async (trx) => {
      // Locked first, so that the users checked below include any being linked right now.
      const current = await repo.findStream(trx, a.accountId, id, 'update');
      if (!current) throw new NotFoundError('Stream', id);
      const users = await repo.streamUsers(trx, id);
      if (users.pipelines.length + users.connections.length > 0) {
        throw new ConflictError(`Stream "${current.name}" is used by ${describeUsers(users)}; delete or change those first.`, users);
      }
      await repo.deleteStream(trx, a.accountId, id);
      this.logger.info({ accountId: a.accountId, streamId: id }, 'stream deleted');
      return current;
    });
  }
}

function groupBy<T>(rows: readonly T[], keyOf: (row: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const row of rows) {
    const key = keyOf(row);
    const group = groups.get(key);
    if (group) group.push(row);
    else groups.set(key, [row]);
  }
  return groups;
}

function describeUsers(users: { pipelines: string[]; connections: string[] }): string {
  const parts = [
    ...users.pipelines.map((name) => `pipeline "${name}"`),
    ...users.connections.map((name) => `connection "${name}"`),
  ];
  return parts.join(', ');
}
