import { builder } from '../graphql/builder.js';
import { decodeId } from '../graphql/global-id.js';
import { registerNodeLoader } from '../graphql/node.js';
import { MAX_PINNED_SNAPSHOTS, SNAPSHOT_RETENTION } from './snapshot.service.js';
import type { JobSnapshotRow } from './snapshot.table.js';

export const SnapshotTriggerEnum = builder.enumType('SnapshotTrigger', {
  description: 'Why a snapshot was taken.',
  values: {
    ON_DEMAND: { description: 'Asked for: snapshotPipeline or snapshotConnection.' },
    DEACTIVATION: { description: 'The job was deactivated: it stopped with this savepoint, and resumes from it.' },
  },
});

export const SnapshotRef = builder.node(builder.objectRef<JobSnapshotRow>('Snapshot'), {
  id: { resolve: (row) => row.id },
  description: `A complete savepoint of a pipeline or connection: its state at one moment, to resume from (activate with fromSnapshot). A job keeps its newest ${SNAPSHOT_RETENTION} unpinned snapshots and every pinned one; the retention deletes older ones, files and all, and deleting the job deletes them all.`,
  fields: (t) => ({
    trigger: t.field({ type: SnapshotTriggerEnum, resolve: (row) => row.trigger }),
    takenAt: t.field({ type: 'DateTime', resolve: (row) => row.taken_at }),
    sizeBytes: t.float({ description: 'What its files hold, in bytes.', resolve: (row) => row.size_bytes }),
    stateGeneration: t.exposeInt('state_generation', { description: 'The state generation the job was in.' }),
    specVersion: t.exposeInt('spec_version', { description: 'The spec version the job was running.' }),
    pinned: t.exposeBoolean('pinned', { description: `Kept by the retention until unpinned (at most ${MAX_PINNED_SNAPSHOTS} per job).` }),
  }),
});
registerNodeLoader('Snapshot', (ctx, id) => ctx.services.snapshots.get(ctx.actor, id));

builder.mutationFields((t) => ({
  snapshotPipeline: t.field({
    type: SnapshotRef,
    description:
      'Takes a savepoint of a running pipeline, which runs on; resolves once it is complete. CONFLICT when the pipeline is not RUNNING; SNAPSHOT_FAILED with Flink’s reason when the savepoint is not taken.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.snapshots.take(ctx.actor, 'PIPELINE', decodeId(String(args.id), 'Pipeline')),
  }),
  snapshotConnection: t.field({
    type: SnapshotRef,
    description: 'Takes a savepoint of a running connection, which runs on; as snapshotPipeline.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.snapshots.take(ctx.actor, 'CONNECTION', decodeId(String(args.id), 'Connection')),
  }),
  pinSnapshot: t.field({
    type: SnapshotRef,
    description: `Pins (kept until unpinned) or unpins a snapshot; an unpinned one falls under the retention again (the newest ${SNAPSHOT_RETENTION} unpinned stay).`,
    args: { id: t.arg.id({ required: true }), pinned: t.arg.boolean({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.snapshots.pin(ctx.actor, decodeId(String(args.id), 'Snapshot'), args.pinned),
  }),
}));
