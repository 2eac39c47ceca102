import type { Db } from '../platform/database.js';
import * as connectionRepo from '../connections/connection.repository.js';
import { flinkOptionsOf, isKeyedConnector } from '../connections/connector-catalog.js';
import * as pipelineRepo from '../pipelines/pipeline.repository.js';
import * as streamRepo from '../streams/stream.repository.js';
import type { StreamRow } from '../streams/stream.table.js';
import type { JobStateRow } from './job.repository.js';
import type { JobSpec, StreamBinding } from './job-spec.js';

function binding(row: StreamRow): StreamBinding {
  return { id: row.id, name: row.name, kind: row.kind, fields: row.fields, primaryKey: row.primary_key };
}

/** Everything the runtime needs to run a job, read fresh from the database. */
export async function loadJobSpec(db: Db, job: JobStateRow): Promise<JobSpec | undefined> {
  const base = {
    kind: job.kind,
    id: job.id,
    accountId: job.account_id,
    name: job.name,
    specVersion: job.spec_version,
    taskSize: job.task_size,
    taskCount: job.task_count,
    deliveryGuarantee: job.delivery_guarantee,
    checkpointIntervalMs: job.checkpoint_interval_ms,
    state: { generation: job.state_generation, startPositions: job.start_positions, initialSnapshot: job.initial_snapshot },
  };
  if (job.kind === 'PIPELINE') {
    const pipeline = await pipelineRepo.findPipeline(db, job.account_id, job.id);
    if (!pipeline) return undefined;
    const links = await pipelineRepo.pipelineStreamIds(db, job.id);
    const streams = await streamRepo.findStreamsByIds(db, job.account_id, [...links.inputIds, links.outputId!]);
    const byId = new Map(streams.map((s) => [s.id, binding(s)]));
    return {
      ...base,
      program: {
        type: 'PIPELINE',
        sql: pipeline.sql,
        inputs: links.inputIds.map((id) => byId.get(id)!),
        output: byId.get(links.outputId!)!,
      },
    };
  }
  const connection = await connectionRepo.findConnection(db, job.account_id, job.id);
  if (!connection) return undefined;
  const stream = await streamRepo.findStream(db, job.account_id, connection.stream_id);
  const options = flinkOptionsOf(connection.connector, {
    connectionId: connection.id,
    type: connection.type,
    deliveryGuarantee: connection.delivery_guarantee,
    properties: connection.properties,
    secretProperties: connection.secret_properties,
  });
  return {
    ...base,
    program: {
      type: 'CONNECTION',
      connector: connection.connector,
      connectionType: connection.type,
      properties: options.properties,
      secretProperties: options.secretProperties,
      stream: binding(stream!),
      ...(isKeyedConnector(connection.connector) ? { keyed: true } : {}),
    },
  };
}
