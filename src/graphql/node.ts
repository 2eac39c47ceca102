import { brandWithType } from '@pothos/core';
import { NotFoundError } from '../platform/errors.js';
import { builder } from './builder.js';
import type { GraphQLContext } from './context.js';
import { decodeAnyId } from './global-id.js';

type NodeLoader = (context: GraphQLContext, id: string) => Promise<object>;

const loaders = new Map<string, NodeLoader>();

/** Each node type registers how to load one object of the caller's account by uuid. */
export function registerNodeLoader(typename: string, loader: NodeLoader): void {
  loaders.set(typename, loader);
}

builder.queryField('node', (t) =>
  t.field({
    type: builder.nodeInterfaceRef(),
    description: "Any object of the caller's account by global id. NOT_FOUND for unknown ids and other accounts' ids.",
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, args, context) => {
      const globalId = String(args.id);
      const decoded = decodeAnyId(globalId);
      const loader = decoded && loaders.get(decoded.type);
      if (!decoded || !loader) throw new NotFoundError('Node', globalId);
      const object = await loader(context, decoded.id);
      brandWithType(object, decoded.type as never);
      return object as never;
    },
  }),
);
