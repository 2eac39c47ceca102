import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import type { GraphQLError } from 'graphql';
import { useCostLimit } from './operation-cost.js';

/**
 * Operation limits, enforced at parse and validation, so HTTP and WebSocket share them.
 * The cost is Weir's own rule (operation-cost.ts): it knows which fields return lists.
 */
export const LIMITS = Object.freeze({
  maxDepth: 12,
  maxCost: 50_000,
  maxAliases: 15,
  maxTokens: 2000,
  maxDirectives: 20,
});

function coded(code: string) {
  return [(_ctx: unknown, error: GraphQLError) => void Object.assign(error.extensions, { code })];
}

export function useOperationLimits() {
  return [useArmor(), useCostLimit(LIMITS.maxCost)];
}

function useArmor() {
  return EnvelopArmorPlugin({
    maxDepth: { n: LIMITS.maxDepth, onReject: coded('DEPTH_LIMIT_EXCEEDED') },
    // graphql-armor's cost rule does not read the schema: a list without `first` costs one item.
    costLimit: { enabled: false },
    maxAliases: { n: LIMITS.maxAliases, onReject: coded('ALIAS_LIMIT_EXCEEDED') },
    maxTokens: { n: LIMITS.maxTokens, onReject: coded('TOKEN_LIMIT_EXCEEDED') },
    maxDirectives: { n: LIMITS.maxDirectives, onReject: coded('DIRECTIVE_LIMIT_EXCEEDED') },
    blockFieldSuggestion: { enabled: true },
  });
}
