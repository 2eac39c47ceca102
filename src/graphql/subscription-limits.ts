import type { Plugin } from '@envelop/core';
import { GraphQLError, type ExecutionArgs } from 'graphql';
import { SubscriptionLimitExceededError } from '../platform/errors.js';
import { finallyIterable } from '../platform/finally-iterable.js';
import type { GraphQLContext } from './context.js';

const isAsyncIterable = (value: unknown): value is AsyncIterable<unknown> =>
  typeof value === 'object' && value !== null && Symbol.asyncIterator in value;

/**
 * Every subscription, of any field and over any transport, holds a slot of its API key
 * and account (SubscriptionSlots) from before its resolver runs until it ends. One over
 * the tier's limit gets a SUBSCRIPTION_LIMIT_EXCEEDED result; the socket or stream
 * carrying it is not affected.
 */
export function useSubscriptionLimits(): Plugin<GraphQLContext> {
  return {
    onSubscribe({ args, subscribeFn, setSubscribeFn }) {
      const { actor, services, logger } = args.contextValue;
      // Without a key the resolver refuses the subscription; there is nothing to count against.
      if (!actor) return;
      setSubscribeFn(async (subscribeArgs: ExecutionArgs) => {
        let release: () => void;
        try {
          release = await services.subscriptions.take(actor);
        } catch (error) {
          if (error instanceof SubscriptionLimitExceededError) {
            logger.info({ keyId: actor.keyId, scope: error.scope, limit: error.limit }, 'subscription refused: limit reached');
          }
          // A result, not a throw: graphql-ws closes the whole socket on a thrown error.
          // The error boundary types the limit and masks (and logs) anything else.
          const cause = error instanceof Error ? error : new Error(String(error));
          return { errors: [new GraphQLError(cause.message, { originalError: cause })] };
        }
        try {
          const result: unknown = await subscribeFn(subscribeArgs);
          if (isAsyncIterable(result)) return finallyIterable(result, release);
          release();
          return result;
        } catch (error) {
          release();
          throw error;
        }
      });
    },
  };
}
