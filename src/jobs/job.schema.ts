import { builder } from '../graphql/builder.js';
import { decodeId, encodeId } from '../graphql/global-id.js';
import type { ActivateOptions } from './job.service.js';
import type { RestoreMode, StartFrom, StartPosition, StartPositions } from './start-position.js';
import { resolvePage } from '../graphql/pages.js';
import type { JobTransitionRow } from './job.table.js';
import { MAX_CHECKPOINT_INTERVAL_MS, MIN_CHECKPOINT_INTERVAL_MS } from './job-input.js';
import { SnapshotRef } from './snapshot.schema.js';

export const DesiredStateEnum = builder.enumType('DesiredState', {
  description: 'What the user asked for.',
  values: ['ACTIVE', 'INACTIVE'] as const,
});

export const ActualStateEnum = builder.enumType('ActualState', {
  description: 'What the runtime was last seen doing. FINISHED: a bounded job ran to its end.',
  values: ['STARTING', 'RUNNING', 'RECOVERING', 'STOPPING', 'STOPPED', 'FAILED', 'FINISHED'] as const,
});

export const TaskSizeEnum = builder.enumType('TaskSize', {
  description: 'Resources of one task: S (1 CPU, 1 GiB), M (2 CPU, 2 GiB), L (4 CPU, 4 GiB).',
  values: ['S', 'M', 'L'] as const,
});

export const DeliveryGuaranteeEnum = builder.enumType('DeliveryGuarantee', {
  description: 'How what a job writes is delivered, across failures and restarts.',
  values: {
    EXACTLY_ONCE: {
      description:
        'Every record once, never twice, even after a crash: writes to Kafka go in transactions committed when a checkpoint completes, and every reader of a stream reads committed records only. Costs latency: output becomes visible after the next checkpoint (up to the checkpoint interval). A jdbc sink gets it by upserting on the primary key.',
    },
    AT_LEAST_ONCE: {
      description:
        'Output is visible as soon as it is written; after a failure, what followed the last checkpoint is written again (duplicates, never gaps).',
    },
  },
});

/** The delivery fields of a pipeline or connection, for its object type. */
export const deliveryFields = {
  deliveryGuarantee: 'How what the job writes is delivered. Default EXACTLY_ONCE (AT_LEAST_ONCE for a jdbc sink without a primary key).',
  checkpointIntervalMs: `How often the job checkpoints, in ms (${MIN_CHECKPOINT_INTERVAL_MS} to ${MAX_CHECKPOINT_INTERVAL_MS}): under EXACTLY_ONCE, how long output waits to be visible. null: the runtime's default.`,
} as const;

export const JobKindEnum = builder.enumType('JobKind', { values: ['PIPELINE', 'CONNECTION'] as const });

export const JobTransitionRef = builder.objectRef<JobTransitionRow>('JobTransition').implement({
  description: 'One observed change of actual state.',
  fields: (t) => ({
    state: t.field({ type: ActualStateEnum, resolve: (row) => row.state }),
    reason: t.exposeString('reason', { nullable: true }),
    at: t.field({ type: 'DateTime', resolve: (row) => row.at }),
  }),
});

export const JobStatusInterface = builder.interfaceRef<{
  id: string;
  state_generation: number;
  start_positions: StartPositions;
  state_started_at: Date | null;
  desired_state: 'ACTIVE' | 'INACTIVE';
  actual_state: JobTransitionRow['state'];
  actual_reason: string | null;
}>('Job');

builder.interfaceType(JobStatusInterface, {
  description: 'A pipeline or a connection: something that runs on Flink when active.',
  fields: (t) => ({
    desiredState: t.field({ type: DesiredStateEnum, resolve: (row) => row.desired_state }),
    actualState: t.field({ type: ActualStateEnum, resolve: (row) => row.actual_state }),
    actualReason: t.exposeString('actual_reason', { nullable: true, description: 'Why, for FAILED and RECOVERING.' }),
    stateGeneration: t.exposeInt('state_generation', {
      description:
        'Counts the times the job started over without state: activations with restore NONE, and changes of what it computes (its SQL, its external side, its delivery).',
    }),
    stateStartedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When this generation was first activated; null: never, so the job has no state yet.',
      resolve: (row) => row.state_started_at,
    }),
    startPositions: t.field({
      type: [StartPositionRef],
      description: 'Where the inputs are read from when this generation starts without state.',
      resolve: (row) => Object.entries(row.start_positions).map(([streamId, position]) => ({ streamId, position })),
    }),
    snapshots: t.field({
      type: [SnapshotRef],
      description: 'Its savepoints, newest first: taken on demand and at deactivations, kept by the retention.',
      resolve: (row, _args, ctx) => ctx.services.snapshots.list(ctx.actor, row.id),
    }),
    history: t.connection({
      type: JobTransitionRef,
      description: 'Observed state transitions, oldest first.',
      resolve: (row, args, ctx) => resolvePage(args, (page) => ctx.services.jobs.history(ctx.actor, row.id, page)),
    }),
  }),
});

export const StatusChangeRef = builder
  .objectRef<{ kind: 'PIPELINE' | 'CONNECTION'; jobId: string; desiredState: 'ACTIVE' | 'INACTIVE'; state: JobTransitionRow['state']; reason: string | null; at: Date }>(
    'StatusChange',
  )
  .implement({
    description: 'A pipeline or connection changed actual state.',
    fields: (t) => ({
      kind: t.field({ type: JobKindEnum, resolve: (e) => e.kind }),
      jobId: t.id({
        description: 'Global id of the pipeline or connection.',
        resolve: (e) => encodeId(e.kind === 'PIPELINE' ? 'Pipeline' : 'Connection', e.jobId),
      }),
      desiredState: t.field({ type: DesiredStateEnum, resolve: (e) => e.desiredState }),
      state: t.field({ type: ActualStateEnum, resolve: (e) => e.state }),
      reason: t.exposeString('reason', { nullable: true }),
      at: t.field({ type: 'DateTime', resolve: (e) => e.at }),
    }),
  });

export const RestoreModeEnum = builder.enumType('RestoreMode', {
  description: 'What an activation restores.',
  values: {
    LATEST: {
      description:
        'The latest state there is: the savepoint taken when the job was stopped, or a later checkpoint; the job goes on exactly where it stopped. With no state yet, it starts from its start positions.',
    },
    NONE: {
      description:
        'Nothing: a new state generation starts without state, from `startFrom` (EARLIEST for every input not named). The old checkpoints are deleted; its snapshots stay until the retention drops them.',
    },
  },
});

export const StartFromEnum = builder.enumType('StartFrom', {
  description: 'Where a job without state starts reading an input stream.',
  values: {
    EARLIEST: { description: 'The first record the stream holds.' },
    LATEST: { description: 'The end of the stream at activation: only records published after it.' },
    TIMESTAMP: { description: 'The first record published at or after `timestamp`.' },
  },
});

const StartPositionInputRef = builder.inputType('StartPositionInput', {
  description: 'Where one input stream is read from, or every input when `stream` is null.',
  fields: (t) => ({
    stream: t.id({ description: 'An input stream of the job; null: every input not named in another entry.' }),
    from: t.field({ type: StartFromEnum, required: true }),
    timestamp: t.field({ type: 'DateTime', description: 'With from: TIMESTAMP only; not in the future.' }),
  }),
});

/** The arguments of activatePipeline and activateConnection beside the id. */
export const activationArgs = builder.args((t) => ({
    restore: t.field({ type: RestoreModeEnum, description: 'Default LATEST: resume where the job stopped.' }),
    fromSnapshot: t.id({
      description:
        'One of the job’s snapshots to start from instead: a new state generation begins with that state (what the job did after it is not restored). Not with restore NONE. NOT_FOUND for any other id.',
    }),
    startFrom: t.field({
      type: [StartPositionInputRef],
      description:
        'Where inputs are read from when the job starts without state: a first activation, or with restore: NONE. Not taken with restore LATEST once the job has state. Default EARLIEST. CHANGE streams are always read from EARLIEST.',
    }),
}));

/** activationArgs as the job service takes them. */
export function activateOptionsOf(args: {
  restore?: RestoreMode | null | undefined;
  fromSnapshot?: string | number | null | undefined;
  startFrom?: readonly { stream?: string | number | null; from: StartFrom; timestamp?: Date | null }[] | null | undefined;
}): ActivateOptions {
  return {
    restore: args.restore ?? null,
    fromSnapshot: args.fromSnapshot != null ? decodeId(String(args.fromSnapshot), 'Snapshot') : null,
    startFrom: (args.startFrom ?? []).map((p) => ({
      streamId: p.stream != null ? decodeId(String(p.stream), 'Stream') : null,
      from: p.from,
      timestamp: p.timestamp ?? null,
    })),
  };
}

const StartPositionRef = builder
  .objectRef<{ streamId: string; position: StartPosition }>('StartPosition')
  .implement({
    description: 'Where an input stream is read from when the job starts without state, as resolved at activation. Inputs not listed start from EARLIEST.',
    fields: (t) => ({
      stream: t.id({ description: 'Global id of the input stream.', resolve: (p) => encodeId('Stream', p.streamId) }),
      from: t.field({ type: StartFromEnum, resolve: (p) => (p.position.from === 'OFFSET' ? 'LATEST' : p.position.from) }),
      offset: t.string({
        nullable: true,
        description: 'For LATEST: the offset the stream ended at when the job was activated.',
        resolve: (p) => (p.position.from === 'OFFSET' ? p.position.offset : null),
      }),
      timestamp: t.field({
        type: 'DateTime',
        nullable: true,
        resolve: (p) => (p.position.from === 'TIMESTAMP' ? new Date(p.position.timestampMs) : null),
      }),
    }),
  });
