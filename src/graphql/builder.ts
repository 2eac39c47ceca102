import SchemaBuilder from '@pothos/core';
import RelayPlugin from '@pothos/plugin-relay';
import type { GraphQLContext } from './context.js';

/** Only configuration lives here; each type is defined beside its domain. */
export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  DefaultFieldNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    JSON: { Input: unknown; Output: unknown };
  };
}>({
  plugins: [RelayPlugin],
  defaultFieldNullability: false,
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    // `node(id)` is defined by hand: it answers NOT_FOUND, never null, for ids of other accounts.
    nodeQueryOptions: false,
    nodesQueryOptions: false,
  },
});

builder.queryType({ description: 'Reads. Every field but `connectors` needs an API key.' });
builder.mutationType({ description: 'Writes. `signUp` is public; the rest need an API key with a suitable role.' });
builder.subscriptionType({ description: 'Live events over WebSocket (graphql-ws) or Server-Sent Events.' });
