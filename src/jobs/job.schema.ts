import { builder } from '../graphql/builder.js';
import { encodeId } from '../graphql/global-id.js';
import { resolvePage } from '../graphql/pages.js';
import type { JobTransitionRow } from './job.table.js';
import { MAX_CHECKPOINT_INTERVAL_MS, MIN_CHECKPOINT_INTERVAL_MS } from './job-input.js';

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
