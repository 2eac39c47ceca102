import { builder } from '../graphql/builder.js';
import { ValidationError } from '../platform/errors.js';
import { DeletePayloadRef, deleted } from '../graphql/delete-payload.js';
import { decodeId } from '../graphql/global-id.js';
import { registerNodeLoader } from '../graphql/node.js';
import { costOf } from '../graphql/operation-cost.js';
import { resolvePage } from '../graphql/pages.js';
import { activateOptionsOf, activationArgs, DeliveryGuaranteeEnum, deliveryFields, JobStatusInterface, TaskSizeEnum } from '../jobs/job.schema.js';
import { StreamFieldRef, StreamRef } from '../streams/stream.schema.js';
import type { ConnectionRow } from './connection.table.js';
import { CONNECTORS } from './connector-catalog.js';
import type { ConnectorDefinition, OptionDefinition } from './connectors/connector-definition.js';
import type { CheckResult, TableSchema } from './postgres-inspect.js';

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
    deliveryGuarantee: t.field({ type: DeliveryGuaranteeEnum, description: deliveryFields.deliveryGuarantee, resolve: (row) => row.delivery_guarantee }),
    checkpointIntervalMs: t.exposeInt('checkpoint_interval_ms', { nullable: true, description: deliveryFields.checkpointIntervalMs }),
    createdAt: t.field({ type: 'DateTime', resolve: (row) => row.created_at }),
    updatedAt: t.field({ type: 'DateTime', resolve: (row) => row.updated_at }),
  }),
});
registerNodeLoader('Connection', (ctx, id) => ctx.services.connections.get(ctx.actor, id));

const CreateConnectionInput = builder.inputType('CreateConnectionInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    connector: t.string({ required: true, description: 'A name from `connectors`: datagen, kafka, postgres-cdc or jdbc.' }),
    type: t.field({ type: ConnectionTypeEnum, required: true }),
    streamId: t.id({ required: true, description: 'The stream this connection feeds (SOURCE) or drains (SINK).' }),
    properties: t.field({ type: 'JSON', description: 'Connector options: an object of key to string, number or boolean.' }),
    taskSize: t.field({ type: TaskSizeEnum, description: 'Default S.' }),
    taskCount: t.int({ description: 'Parallelism, 1 to 64. Default 1.' }),
    deliveryGuarantee: t.field({ type: DeliveryGuaranteeEnum, description: deliveryFields.deliveryGuarantee }),
    checkpointIntervalMs: t.int({ description: deliveryFields.checkpointIntervalMs }),
  }),
});

const UpdateConnectionInput = builder.inputType('UpdateConnectionInput', {
  fields: (t) => ({
    name: t.string(),
    properties: t.field({ type: 'JSON', description: 'Replaces the options; secret options left out keep their values.' }),
    taskSize: t.field({ type: TaskSizeEnum }),
    taskCount: t.int(),
    deliveryGuarantee: t.field({ type: DeliveryGuaranteeEnum }),
    checkpointIntervalMs: t.int(),
  }),
});

const SourceSchemaRef = builder.objectRef<TableSchema>('SourceSchema').implement({
  description: 'A Postgres table as a stream would hold it: its columns as Flink types, and its primary key.',
  fields: (t) => ({
    fields: t.field({ type: [StreamFieldRef], extensions: costOf({ listSize: 10 }), resolve: (s) => [...s.fields] }),
    primaryKey: t.stringList({ resolve: (s) => [...s.primaryKey] }),
  }),
});

const ConnectionCheckNameEnum = builder.enumType('ConnectionCheckName', {
  values: {
    REACHABLE: { description: 'The server answers on its host and port.' },
    LOGIN: { description: 'The user name and password are accepted, and the database exists.' },
    TABLE: { description: 'The table exists and the role can see it.' },
    TYPES: { description: 'Every column has a Flink type Weir maps.' },
    WAL_LEVEL: { description: 'postgres-cdc: wal_level is logical.' },
    REPLICATION: { description: 'postgres-cdc: the role has REPLICATION (or is a superuser).' },
    PUBLICATION: { description: 'postgres-cdc: the named publication includes the table, or Weir can create one (the role owns the table).' },
    PRIMARY_KEY: { description: 'postgres-cdc: the table has a primary key. jdbc: the stream’s key is the table’s primary key.' },
    PRIVILEGES: { description: 'jdbc: the role may INSERT (and UPDATE and DELETE for a CHANGE stream).' },
    COLUMNS: { description: 'Every field of the stream is a column of the table, of the same type.' },
  } as const,
});

const ConnectionCheckRef = builder.objectRef<CheckResult>('ConnectionCheck').implement({
  fields: (t) => ({
    name: t.field({ type: ConnectionCheckNameEnum, resolve: (c) => c.name }),
    passed: t.exposeBoolean('passed'),
    message: t.exposeString('message', { description: 'What was found, in the server’s words where it answered.' }),
  }),
});

const ConnectionTestRef = builder.objectRef<readonly CheckResult[]>('ConnectionTest').implement({
  description: 'The checks of a connection against its server, in order; a failure to reach or log in ends the list.',
  fields: (t) => ({
    passed: t.boolean({ resolve: (checks) => checks.every((c) => c.passed) }),
    checks: t.field({ type: [ConnectionCheckRef], extensions: costOf({ listSize: 10 }), resolve: (checks) => [...checks] }),
  }),
});

const TestConnectionInput = builder.inputType('TestConnectionInput', {
  fields: (t) => ({
    connector: t.string({ required: true, description: 'postgres-cdc or jdbc.' }),
    streamId: t.id({ description: 'The stream it would feed or drain: its fields are compared with the table’s columns.' }),
    properties: t.field({ type: 'JSON', description: 'Connector options, as createConnection takes them.' }),
  }),
});

builder.queryFields((t) => ({
  sourceSchema: t.field({
    type: SourceSchemaRef,
    description:
      'Connects with these postgres-cdc or jdbc options and returns the table’s columns as stream fields and its primary key, ready for createStream. A column of a type Weir cannot map is a VALIDATION problem naming it.',
    args: {
      connector: t.arg.string({ required: true }),
      properties: t.arg({ type: 'JSON', required: true }),
    },
    resolve: (_root, args, ctx) => ctx.services.connections.sourceSchema(ctx.actor, args.connector, args.properties),
  }),
  testConnection: t.field({
    type: ConnectionTestRef,
    description: 'Checks a Postgres connection against its server: a stored one (`id`) or one about to be created (`input`). Changes nothing.',
    args: {
      id: t.arg.id(),
      input: t.arg({ type: TestConnectionInput }),
    },
    resolve: (_root, args, ctx) => {
      if ((args.id == null) === (args.input == null)) throw ValidationError.of(['id'], 'give either id or input');
      if (args.id != null) return ctx.services.connections.test(ctx.actor, { id: decodeId(String(args.id), 'Connection') });
      const input = args.input!;
      return ctx.services.connections.test(ctx.actor, {
        input: {
          connector: input.connector,
          properties: input.properties,
          ...(input.streamId != null ? { streamId: decodeId(String(input.streamId), 'Stream') } : {}),
        },
      });
    },
  }),
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
    description:
      'Deletes an inactive connection. A postgres-cdc connection’s replication slot (and the publication Weir made) are dropped on the source server first; if they cannot be, the connection is kept and the error says why.',
    args: {
      id: t.arg.id({ required: true }),
      keepReplicationSlot: t.arg.boolean({
        description: 'postgres-cdc only: delete the connection even if its replication slot cannot be dropped, leaving the slot on the server (drop it yourself: it holds WAL).',
      }),
    },
    resolve: (_root, args, ctx) =>
      ctx.services.connections
        .delete(ctx.actor, id(args), { keepReplicationSlot: args.keepReplicationSlot === true })
        .then(deleted('Connection')),
  }),
  activateConnection: t.field({
    type: ConnectionRef,
    args: { id: t.arg.id({ required: true }), ...activationArgs },
    resolve: (_root, args, ctx) => ctx.services.connections.activate(ctx.actor, id(args), activateOptionsOf(args)),
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
