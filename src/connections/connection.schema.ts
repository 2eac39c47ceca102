import { builder } from '../graphql/builder.js';
import { DeletePayloadRef, deleted } from '../graphql/delete-payload.js';
import { decodeId } from '../graphql/global-id.js';
import { registerNodeLoader } from '../graphql/node.js';
import { costOf } from '../graphql/operation-cost.js';
import { resolvePage } from '../graphql/pages.js';
import { JobStatusInterface, TaskSizeEnum } from '../jobs/job.schema.js';
import { StreamRef } from '../streams/stream.schema.js';
import type { ConnectionRow } from './connection.table.js';
import { CONNECTORS } from './connector-catalog.js';
import type { ConnectorDefinition, OptionDefinition } from './connectors/connector-definition.js';

export const ConnectionTypeEnum = builder.enumType('ConnectionType', {
  description: 'SOURCE: external system → stream. SINK: stream → external system.',
  values: ['SOURCE', 'SINK'] as const,
});

const OptionTypeEnum = builder.enumType('OptionType', {
  values: ['STRING', 'INT', 'LONG', 'DOUBLE', 'BOOLEAN', 'ENUM'] as const,
});

const ConnectorOptionRef = builder.objectRef<OptionDefinition>('ConnectorOption').implement({
  fields: (t) => ({
    key: t.exposeString('key', { description: 'Flink option key; `#` stands for a stream field name.' }),
    type: t.field({ type: OptionTypeEnum, resolve: (o) => o.type }),
    required: t.exposeBoolean('required'),
    secret: t.exposeBoolean('secret', { description: 'Write-only: never returned once set.' }),
    description: t.exposeString('description'),
    default: t.field({ type: 'JSON', nullable: true, resolve: (o) => o.default ?? null }),
    enumValues: t.stringList({ nullable: true, resolve: (o) => o.enumValues ?? null }),
    min: t.float({ nullable: true, resolve: (o) => o.min ?? null }),
    max: t.float({ nullable: true, resolve: (o) => o.max ?? null }),
    appliesTo: t.field({ type: [ConnectionTypeEnum], nullable: true, resolve: (o) => o.appliesTo ?? null }),
  }),
});

const ConnectorRef = builder.objectRef<ConnectorDefinition>('Connector').implement({
  description: 'A kind of external system Weir can connect a stream to.',
  fields: (t) => ({
    name: t.exposeString('name'),
    description: t.exposeString('description'),
    types: t.field({ type: [ConnectionTypeEnum], resolve: (c) => c.types }),
    options: t.field({
      type: [ConnectorOptionRef],
      extensions: costOf({ listSize: Math.max(...CONNECTORS.map((c) => c.options.length)) }),
      resolve: (c) => c.options,
    }),
  }),
});

export const ConnectionRef = builder.node(builder.objectRef<ConnectionRow>('Connection'), {
  id: { resolve: (row) => row.id },
  interfaces: [JobStatusInterface],
  description: 'Moves data between an external system and a stream.',
  fields: (t) => ({
    name: t.exposeString('name'),
    connector: t.exposeString('connector'),
    type: t.field({ type: ConnectionTypeEnum, resolve: (row) => row.type }),
    stream: t.field({ type: StreamRef, resolve: (row, _args, ctx) => ctx.loaders.stream(row.stream_id) }),
    properties: t.field({
      type: 'JSON',
      description: 'Connector options, secret ones left out.',
      resolve: (row) => row.properties,
    }),
    secretPropertyKeys: t.stringList({
      description: 'Which secret options are set (their values are write-only).',
      resolve: (row) => Object.keys(row.secret_properties).sort(),
    }),
    taskSize: t.field({ type: TaskSizeEnum, resolve: (row) => row.task_size }),
    taskCount: t.exposeInt('task_count'),
    createdAt: t.field({ type: 'DateTime', resolve: (row) => row.created_at }),
    updatedAt: t.field({ type: 'DateTime', resolve: (row) => row.updated_at }),
  }),
});
registerNodeLoader('Connection', (ctx, id) => ctx.services.connections.get(ctx.actor, id));

const CreateConnectionInput = builder.inputType('CreateConnectionInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    connector: t.string({ required: true, description: 'A name from `connectors`, e.g. datagen or kafka.' }),
    type: t.field({ type: ConnectionTypeEnum, required: true }),
    streamId: t.id({ required: true, description: 'The stream this connection feeds (SOURCE) or drains (SINK).' }),
    properties: t.field({ type: 'JSON', description: 'Connector options: an object of key to string, number or boolean.' }),
    taskSize: t.field({ type: TaskSizeEnum, description: 'Default S.' }),
    taskCount: t.int({ description: 'Parallelism, 1 to 64. Default 1.' }),
  }),
});

const UpdateConnectionInput = builder.inputType('UpdateConnectionInput', {
  fields: (t) => ({
    name: t.string(),
    properties: t.field({ type: 'JSON', description: 'Replaces the options; secret options left out keep their values.' }),
    taskSize: t.field({ type: TaskSizeEnum }),
    taskCount: t.int(),
  }),
});

builder.queryFields((t) => ({
  connectors: t.field({
    type: [ConnectorRef],
    description: 'The built-in connector catalog (public).',
    extensions: costOf({ listSize: CONNECTORS.length }),
    resolve: () => CONNECTORS,
  }),
  connections: t.connection({
    type: ConnectionRef,
    resolve: (_root, args, ctx) => resolvePage(args, (page) => ctx.services.connections.list(ctx.actor, page)),
  }),
  connection: t.field({
    type: ConnectionRef,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.connections.get(ctx.actor, decodeId(String(args.id), 'Connection')),
  }),
}));

const id = (args: { id: string | number }) => decodeId(String(args.id), 'Connection');

builder.mutationFields((t) => ({
  createConnection: t.field({
    type: ConnectionRef,
    args: { input: t.arg({ type: CreateConnectionInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.connections.create(ctx.actor, { ...input, streamId: decodeId(String(input.streamId), 'Stream') }),
  }),
  updateConnection: t.field({
    type: ConnectionRef,
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateConnectionInput, required: true }) },
    resolve: (_root, args, ctx) => ctx.services.connections.update(ctx.actor, id(args), args.input),
  }),
  deleteConnection: t.field({
    type: DeletePayloadRef,
    description: 'Deletes an inactive connection.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.connections.delete(ctx.actor, id(args)).then(deleted('Connection')),
  }),
  activateConnection: t.field({
    type: ConnectionRef,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.connections.activate(ctx.actor, id(args)),
  }),
  deactivateConnection: t.field({
    type: ConnectionRef,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.connections.deactivate(ctx.actor, id(args)),
  }),
}));

builder.objectField(StreamRef, 'connections', (t) =>
  t.field({
    type: [ConnectionRef],
    description: 'Connections that feed or drain this stream.',
    resolve: (stream, _args, ctx) => ctx.loaders.connectionsOf(stream.id),
  }),
);
