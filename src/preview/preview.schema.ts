import { builder } from '../graphql/builder.js';
import { decodeId } from '../graphql/global-id.js';
import type { ResultColumn, ResultRow } from './sql-gateway-client.js';
import { DEFAULT_ROW_LIMIT, MAX_ROW_LIMIT, MAX_TIME_LIMIT_SECONDS, type PreviewEvent } from './preview.service.js';

type EventOf<T extends PreviewEvent['type']> = Extract<PreviewEvent, { type: T }>;

const StartPositionEnum = builder.enumType('PreviewStartPosition', {
  description: 'Where a preview starts reading a stream: its oldest record (EARLIEST) or only new ones (LATEST).',
  values: ['EARLIEST', 'LATEST'] as const,
});

const RowKindEnum = builder.enumType('PreviewRowKind', {
  description: "Flink's change kind of a result row.",
  values: ['INSERT', 'UPDATE_BEFORE', 'UPDATE_AFTER', 'DELETE'] as const,
});

const EndReasonEnum = builder.enumType('PreviewEndReason', {
  values: {
    EOS: { description: 'The query ran to its end.' },
    ROW_LIMIT: { description: 'rowLimit rows were sent.' },
    TIMEOUT: { description: 'timeLimitSeconds passed since PreviewStarted.' },
    CANCELLED: { description: 'The preview was cancelled.' },
    ERROR: { description: 'Flink (or Weir) failed the preview; see message, line and column.' },
  } as const,
});

const StreamStartInput = builder.inputType('PreviewStreamStart', {
  fields: (t) => ({
    streamId: t.id({ required: false }),
    streamName: t.string({ required: false }),
    position: t.field({ type: StartPositionEnum, required: true }),
  }),
});

const PreviewInputRef = builder.inputType('PreviewInput', {
  description: 'Exactly one of sql (one SELECT over your streams) and pipelineId (the SELECT of its INSERT; the sink is never written).',
  fields: (t) => ({
    sql: t.string({ required: false }),
    pipelineId: t.id({ required: false }),
    startPositions: t.field({
      type: [StreamStartInput],
      required: false,
      description: 'Per stream read; streams not listed start at EARLIEST.',
    }),
    rowLimit: t.int({ required: false, defaultValue: DEFAULT_ROW_LIMIT, description: `At most ${MAX_ROW_LIMIT}.` }),
    timeLimitSeconds: t.int({
      required: false,
      defaultValue: MAX_TIME_LIMIT_SECONDS,
      description: `How long the preview runs, counted from PreviewStarted (its job running on its TaskManager); at most ${MAX_TIME_LIMIT_SECONDS}. Waiting in the queue and starting are bounded apart.`,
    }),
  }),
});

const ColumnRef = builder.objectRef<ResultColumn>('PreviewColumn').implement({
  fields: (t) => ({ name: t.exposeString('name'), type: t.exposeString('type', { description: 'Flink SQL type.' }) }),
});

const RowRef = builder.objectRef<ResultRow>('PreviewRow').implement({
  fields: (t) => ({
    kind: t.field({ type: RowKindEnum, resolve: (row) => row.kind }),
    values: t.field({
      type: ['JSON'],
      description: 'One per column. Numbers a JSON double cannot hold exactly (large BIGINTs, long DECIMALs) are strings.',
      resolve: (row) => [...row.values],
    }),
  }),
});

const QueuedRef = builder.objectRef<EventOf<'PreviewQueued'>>('PreviewQueued').implement({
  description: 'Waiting for a TaskManager; position 1 is next.',
  fields: (t) => ({ position: t.exposeInt('position') }),
});

const StartedRef = builder.objectRef<EventOf<'PreviewStarted'>>('PreviewStarted').implement({
  fields: (t) => ({
    columns: t.field({ type: [ColumnRef], resolve: (e) => [...e.columns] }),
    taskManager: t.exposeString('taskManager', { description: 'The TaskManager the job runs on (its own; retired afterwards).' }),
    leaseMs: t.exposeInt('leaseMs', { description: 'How long getting a TaskManager took, queueing included.' }),
  }),
});

const RowsRef = builder.objectRef<EventOf<'PreviewRows'>>('PreviewRows').implement({
  fields: (t) => ({ rows: t.field({ type: [RowRef], resolve: (e) => [...e.rows] }) }),
});

const EndedRef = builder.objectRef<EventOf<'PreviewEnded'>>('PreviewEnded').implement({
  fields: (t) => ({
    reason: t.field({ type: EndReasonEnum, resolve: (e) => e.reason }),
    message: t.exposeString('message', { nullable: true }),
    line: t.exposeInt('line', { nullable: true, description: 'Where in the SQL Flink found the problem, from 1.' }),
    column: t.exposeInt('column', { nullable: true }),
  }),
});

const EventRef = builder.unionType('PreviewEvent', {
  types: [QueuedRef, StartedRef, RowsRef, EndedRef],
  resolveType: (event) => event.type,
});

builder.subscriptionField('preview', (t) =>
  t.field({
    type: EventRef,
    description:
      'Runs a SELECT on real data of your streams, on a TaskManager of its own, for at most ' +
      `${MAX_TIME_LIMIT_SECONDS} s: queued (maybe), started, row batches, ended. Unsubscribing cancels it.`,
    args: { input: t.arg({ type: PreviewInputRef, required: true }) },
    subscribe: async (_root, { input }, ctx) => {
      const plan = await ctx.services.previews.prepare(ctx.actor, {
        sql: input.sql ?? null,
        pipelineId: input.pipelineId != null ? decodeId(String(input.pipelineId), 'Pipeline') : null,
        startPositions: (input.startPositions ?? []).map((s) => ({
          streamId: s.streamId != null ? decodeId(String(s.streamId), 'Stream') : null,
          streamName: s.streamName ?? null,
          position: s.position,
        })),
        rowLimit: input.rowLimit ?? null,
        timeLimitSeconds: input.timeLimitSeconds ?? null,
      });
      return ctx.services.previews.run(plan);
    },
    resolve: (event) => event,
  }),
);
