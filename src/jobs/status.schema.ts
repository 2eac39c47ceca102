import { Repeater, SlidingBuffer } from '@repeaterjs/repeater';
import { requireRole } from '../accounts/actor.js';
import { builder } from '../graphql/builder.js';
import { decodeAnyId } from '../graphql/global-id.js';
import { NotFoundError } from '../platform/errors.js';
import { StatusChangeRef } from './job.schema.js';
import type { StatusChange } from './status-events.js';

/** A slow client loses the oldest transitions, never the gateway's memory. */
const BUFFER_SIZE = 256;

builder.subscriptionField('statusChanged', (t) =>
  t.field({
    type: StatusChangeRef,
    description:
      "Transitions of the account's pipelines and connections, or of one of them when `id` is given. Ends when the API key is revoked.",
    args: { id: t.arg.id({ description: 'Global id of a pipeline or connection.' }) },
    subscribe: async (_root, args, ctx) => {
      const actor = requireRole(ctx.actor, 'VIEWER');
      let jobId: string | undefined;
      if (args.id != null) {
        const decoded = decodeAnyId(String(args.id));
        if (decoded?.type === 'Pipeline') await ctx.services.pipelines.get(actor, decoded.id);
        else if (decoded?.type === 'Connection') await ctx.services.connections.get(actor, decoded.id);
        else throw new NotFoundError('Job', String(args.id));
        jobId = decoded.id;
      }
      return new Repeater<StatusChange>(async (push, stop) => {
        const unsubscribe = ctx.services.statusEvents.subscribe(actor.accountId, (change) => {
          if (jobId === undefined || change.jobId === jobId) void push(change);
        });
        const unwatch = ctx.services.revocations.watch(actor.keyId, () => stop());
        await stop;
        unsubscribe();
        unwatch();
      }, new SlidingBuffer(BUFFER_SIZE));
    },
    resolve: (change) => change,
  }),
);
