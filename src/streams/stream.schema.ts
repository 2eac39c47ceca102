import { builder } from '../graphql/builder.js';
import { DeletePayloadRef, deleted } from '../graphql/delete-payload.js';
import { decodeId } from '../graphql/global-id.js';
import { registerNodeLoader } from '../graphql/node.js';
import { costOf } from '../graphql/operation-cost.js';
import { resolvePage } from '../graphql/pages.js';
import type { StreamField, StreamRow } from './stream.table.js';

export const StreamKindEnum = builder.enumType('StreamKind', {
  description: 'APPEND: every record is new. CHANGE: records update or delete earlier ones by primary key.',
  values: ['APPEND', 'CHANGE'] as const,
});

export const StreamFieldRef = builder.objectRef<StreamField>('StreamField').implement({
  fields: (t) => ({
    name: t.exposeString('name'),
    type: t.exposeString('type', { description: 'Flink SQL data type, e.g. BIGINT, STRING, DECIMAL(10, 2), TIMESTAMP(3).' }),
    nullable: t.exposeBoolean('nullable'),
  }),
});

export const StreamRef = builder.node(builder.objectRef<StreamRow>('Stream'), {
  id: { resolve: (row) => row.id },
  description: 'A named, typed log of records.',
  fields: (t) => ({
    name: t.exposeString('name'),
    kind: t.field({ type: StreamKindEnum, resolve: (row) => row.kind }),
    // Part of the stream's row (no query); most streams have a handful of fields.
    fields: t.field({ type: [StreamFieldRef], extensions: costOf({ listSize: 10 }), resolve: (row) => row.fields }),
    primaryKey: t.stringList({ resolve: (row) => row.primary_key }),
    createdAt: t.field({ type: 'DateTime', resolve: (row) => row.created_at }),
    updatedAt: t.field({ type: 'DateTime', resolve: (row) => row.updated_at }),
  }),
});
registerNodeLoader('Stream', (ctx, id) => ctx.services.streams.get(ctx.actor, id));

const StreamFieldInput = builder.inputType('StreamFieldInput', {
  fields: (t) => ({
    name: t.string({ required: true, description: 'A plain identifier: letters, digits, underscore.' }),
    type: t.string({ required: true, description: 'A Flink SQL data type; `NOT NULL` may follow.' }),
    nullable: t.boolean({ description: 'Default true (false for primary-key fields).' }),
  }),
});

const CreateStreamInput = builder.inputType('CreateStreamInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    kind: t.field({ type: StreamKindEnum, required: true }),
    fields: t.field({ type: [StreamFieldInput], required: true }),
    primaryKey: t.stringList({ description: 'Required for CHANGE streams.' }),
  }),
});

const UpdateStreamInput = builder.inputType('UpdateStreamInput', {
  description: 'Compatible changes only: rename (while unused), widen types, append nullable fields.',
  fields: (t) => ({
    name: t.string(),
    fields: t.field({ type: [StreamFieldInput], description: 'The whole new field list.' }),
  }),
});

builder.queryFields((t) => ({
  streams: t.connection({
    type: StreamRef,
    resolve: (_root, args, ctx) => resolvePage(args, (page) => ctx.services.streams.list(ctx.actor, page)),
  }),
  stream: t.field({
    type: StreamRef,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.streams.get(ctx.actor, decodeId(String(args.id), 'Stream')),
  }),
}));

builder.mutationFields((t) => ({
  createStream: t.field({
    type: StreamRef,
    args: { input: t.arg({ type: CreateStreamInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.services.streams.create(ctx.actor, input),
  }),
  updateStream: t.field({
    type: StreamRef,
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateStreamInput, required: true }) },
    resolve: (_root, { id, input }, ctx) =>
      ctx.services.streams.update(ctx.actor, decodeId(String(id), 'Stream'), input),
  }),
  deleteStream: t.field({
    type: DeletePayloadRef,
    description: 'Deletes a stream; refused (CONFLICT) while a pipeline or connection uses it.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.streams.delete(ctx.actor, decodeId(String(args.id), 'Stream')).then(deleted('Stream')),
  }),
}));
