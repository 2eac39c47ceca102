import { builder } from '../graphql/builder.js';
import { decodeId } from '../graphql/global-id.js';
import { MAX_BYTES_PER_CALL, MAX_RECORDS_PER_CALL } from './record-validation.js';
import { DEFAULT_READ_LIMIT, MAX_READ_LIMIT, type StreamRecordView } from './records.service.js';

const RecordPositionEnum = builder.enumType('RecordPosition', {
  description: 'EARLIEST: the oldest records of a stream. LATEST: the newest.',
  values: ['EARLIEST', 'LATEST'] as const,
});

const StreamRecordRef = builder.objectRef<StreamRecordView>('StreamRecord').implement({
  description: 'One record of a stream, as stored.',
  fields: (t) => ({
    offset: t.exposeString('offset', { description: 'Position in the partition (a 64-bit integer, as a string).' }),
    partition: t.exposeInt('partition'),
    timestamp: t.field({ type: 'DateTime', description: 'When the record was written.', resolve: (r) => r.timestamp }),
    value: t.field({
      type: 'JSON',
      description: "The field values. Numbers a JSON double cannot hold exactly (large BIGINTs, long DECIMALs) are strings.",
      resolve: (r) => r.value,
    }),
  }),
});

const PublishRecordsPayloadRef = builder.objectRef<{ count: number }>('PublishRecordsPayload').implement({
  fields: (t) => ({
    count: t.exposeInt('count', { description: 'How many records were written.' }),
  }),
});

builder.queryFields((t) => ({
  streamRecords: t.field({
    type: [StreamRecordRef],
    description: `The oldest (EARLIEST) or newest (LATEST) records of a stream, oldest first; at most ${MAX_READ_LIMIT}.`,
    args: {
      streamId: t.arg.id({ required: true }),
      from: t.arg({ type: RecordPositionEnum, defaultValue: 'EARLIEST' }),
      limit: t.arg.int({ defaultValue: DEFAULT_READ_LIMIT }),
    },
    resolve: (_root, args, ctx) =>
      ctx.services.records.read(ctx.actor, decodeId(String(args.streamId), 'Stream'), { from: args.from, limit: args.limit }),
  }),
}));

builder.mutationFields((t) => ({
  publishRecords: t.field({
    type: PublishRecordsPayloadRef,
    description:
      `Appends records (JSON objects of field values) to a stream: all of them, or none when any is invalid. ` +
      `At most ${MAX_RECORDS_PER_CALL} records and ${MAX_BYTES_PER_CALL / 1024} KiB per call.`,
    args: {
      streamId: t.arg.id({ required: true }),
      records: t.arg({ type: ['JSON'], required: true }),
    },
    resolve: (_root, args, ctx) =>
      ctx.services.records.publish(ctx.actor, decodeId(String(args.streamId), 'Stream'), args.records),
  }),
}));
