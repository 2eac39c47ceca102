import type { Plugin } from '@envelop/core';
import { GraphQLError, type ExecutionResult } from 'graphql';
import { WeirError } from '../platform/errors.js';
import type { GraphQLContext } from './context.js';

/**
 * The error boundary. A WeirError becomes a GraphQL error with `extensions.code` and its
 * details; GraphQL's own errors (syntax, validation, limits) pass as they are; anything
 * else is logged with the request id and masked.
 */
export function toClientError(error: GraphQLError, context: Partial<GraphQLContext>): GraphQLError {
  const original = error.originalError;
  if (original instanceof WeirError) {
    return new GraphQLError(original.message, {
      nodes: error.nodes,
      path: error.path,
      extensions: { code: original.code, ...original.details },
    });
  }
  if (!original || original instanceof GraphQLError) return error;
  context.logger?.error({ err: original, path: error.path }, 'unexpected error');
  return new GraphQLError('Unexpected error.', {
    nodes: error.nodes,
    path: error.path,
    extensions: { code: 'INTERNAL_SERVER_ERROR', requestId: context.requestId },
  });
}

function mapResult(result: ExecutionResult, context: Partial<GraphQLContext>): ExecutionResult {
  if (!result.errors?.length) return result;
  return { ...result, errors: result.errors.map((error) => toClientError(error, context)) };
}

const isAsyncIterable = (value: unknown): value is AsyncIterable<unknown> =>
  typeof value === 'object' && value !== null && Symbol.asyncIterator in value;

export function useWeirErrors(): Plugin<GraphQLContext> {
  return {
    onExecute() {
      return {
        onExecuteDone({ result, setResult, args }) {
          if (!isAsyncIterable(result)) setResult(mapResult(result as ExecutionResult, args.contextValue));
        },
      };
    },
    onSubscribe() {
      return {
        onSubscribeResult({ result, setResult, args }) {
          if (!isAsyncIterable(result)) {
            setResult(mapResult(result as ExecutionResult, args.contextValue));
            return;
          }
          return {
            onNext({ result: next, setResult: setNext }) {
              setNext(mapResult(next as ExecutionResult, args.contextValue));
            },
          };
        },
        onSubscribeError({ error, setError }) {
          if (error instanceof GraphQLError) setError(toClientError(error, {}));
        },
      };
    },
  };
}
