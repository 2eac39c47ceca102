import { builder } from '../graphql/builder.js';
import { DeletePayloadRef, deleted } from '../graphql/delete-payload.js';
import { decodeId } from '../graphql/global-id.js';
import { registerNodeLoader } from '../graphql/node.js';
import { costOf } from '../graphql/operation-cost.js';
import { resolvePage } from '../graphql/pages.js';
import { activateOptionsOf, activationArgs, DeliveryGuaranteeEnum, deliveryFields, JobStatusInterface, TaskSizeEnum } from '../jobs/job.schema.js';
import { StreamRef } from '../streams/stream.schema.js';
import type { PipelineRow } from './pipeline.table.js';

export const PipelineRef = builder.node(builder.objectRef<PipelineRow>('Pipeline'), {
  id: { resolve: (row) => row.id },
  interfaces: [JobStatusInterface],
  description: "Flink SQL from the account's streams into one of its streams.",
  fields: (t) => ({
    name: t.exposeString('name'),
    sql: t.exposeString('sql'),
    taskSize: t.field({ type: TaskSizeEnum, resolve: (row) => row.task_size }),
    taskCount: t.exposeInt('task_count', { description: 'Parallelism of the job.' }),
    deliveryGuarantee: t.field({ type: DeliveryGuaranteeEnum, description: deliveryFields.deliveryGuarantee, resolve: (row) => row.delivery_guarantee }),
    checkpointIntervalMs: t.exposeInt('checkpoint_interval_ms', { nullable: true, description: deliveryFields.checkpointIntervalMs }),
    inputStreams: t.field({
      type: [StreamRef],
      // A pipeline's SQL names a few streams; the cost rule counts this many.
      extensions: costOf({ listSize: 5 }),
      resolve: (row, _args, ctx) => ctx.loaders.inputStreamsOf(row.id),
    }),
    outputStream: t.field({ type: StreamRef, resolve: (row, _args, ctx) => ctx.loaders.outputStreamOf(row.id) }),
    createdAt: t.field({ type: 'DateTime', resolve: (row) => row.created_at }),
    updatedAt: t.field({ type: 'DateTime', resolve: (row) => row.updated_at }),
  }),
});
registerNodeLoader('Pipeline', (ctx, id) => ctx.services.pipelines.get(ctx.actor, id));

const CreatePipelineInput = builder.inputType('CreatePipelineInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    sql: t.string({ required: true, description: '`INSERT INTO <stream> SELECT ... FROM <streams>`: one statement.' }),
    taskSize: t.field({ type: TaskSizeEnum, description: 'Default S.' }),
    taskCount: t.int({ description: 'Parallelism, 1 to 64. Default 1.' }),
    deliveryGuarantee: t.field({ type: DeliveryGuaranteeEnum, description: deliveryFields.deliveryGuarantee }),
    checkpointIntervalMs: t.int({ description: deliveryFields.checkpointIntervalMs }),
  }),
});

const UpdatePipelineInput = builder.inputType('UpdatePipelineInput', {
  description: 'Changing the SQL or resources of an active pipeline redeploys it.',
  fields: (t) => ({
    name: t.string(),
    sql: t.string(),
    taskSize: t.field({ type: TaskSizeEnum }),
    taskCount: t.int(),
    deliveryGuarantee: t.field({ type: DeliveryGuaranteeEnum }),
    checkpointIntervalMs: t.int(),
  }),
});

builder.queryFields((t) => ({
  pipelines: t.connection({
    type: PipelineRef,
    resolve: (_root, args, ctx) => resolvePage(args, (page) => ctx.services.pipelines.list(ctx.actor, page)),
  }),
  pipeline: t.field({
    type: PipelineRef,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.pipelines.get(ctx.actor, decodeId(String(args.id), 'Pipeline')),
  }),
}));

const id = (args: { id: string | number }) => decodeId(String(args.id), 'Pipeline');

builder.mutationFields((t) => ({
  createPipeline: t.field({
    type: PipelineRef,
    args: { input: t.arg({ type: CreatePipelineInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.services.pipelines.create(ctx.actor, input),
  }),
  updatePipeline: t.field({
    type: PipelineRef,
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdatePipelineInput, required: true }) },
    resolve: (_root, args, ctx) => ctx.services.pipelines.update(ctx.actor, id(args), args.input),
  }),
  deletePipeline: t.field({
    type: DeletePayloadRef,
    description: 'Deletes an inactive pipeline.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.pipelines.delete(ctx.actor, id(args)).then(deleted('Pipeline')),
  }),
  activatePipeline: t.field({
    type: PipelineRef,
    description: 'Sets the desired state to ACTIVE (within the tier’s quotas); the pipeline gets its own Flink cluster.',
    args: { id: t.arg.id({ required: true }), ...activationArgs },
    resolve: (_root, args, ctx) => ctx.services.pipelines.activate(ctx.actor, id(args), activateOptionsOf(args)),
  }),
  deactivatePipeline: t.field({
    type: PipelineRef,
    description: 'Sets the desired state to INACTIVE; its Flink cluster is removed.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.pipelines.deactivate(ctx.actor, id(args)),
  }),
}));

builder.objectField(StreamRef, 'pipelines', (t) =>
  t.field({
    type: [PipelineRef],
    description: 'Pipelines that read or write this stream.',
    resolve: (stream, _args, ctx) => ctx.loaders.pipelinesOf(stream.id),
  }),
);
