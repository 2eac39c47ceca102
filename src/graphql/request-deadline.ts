import type { Plugin } from '@envelop/core';
import { GraphQLError, type ExecutionResult } from 'graphql';
import type { Deadline } from '../platform/deadline.js';
import { RequestTimeoutError } from '../platform/errors.js';
import type { GraphQLContext } from './context.js';

/** Settles when the signal aborts, as the result the client gets then. */
function whenAborted(signal: AbortSignal): Promise<ExecutionResult> {
  return new Promise((resolve) => {
    const answer = () => {
      const reason: unknown = signal.reason;
      // Not our deadline: the client went away, so nobody reads this answer.
      const error =
        reason instanceof RequestTimeoutError
          ? new GraphQLError(reason.message, { originalError: reason })
          : new GraphQLError('The request was cancelled.', { extensions: { code: 'REQUEST_CANCELLED' } });
      resolve({ data: null, errors: [error] });
    };
    if (signal.aborted) answer();
    else signal.addEventListener('abort', answer, { once: true });
  });
}

/**
 * Cuts a query or mutation (over HTTP or WebSocket) that runs longer than `timeoutMs`
 * with REQUEST_TIMEOUT. Subscriptions never pass through execute, so they are not cut.
 * The executor gets the deadline's signal and starts no field after it; loaders start
 * no batch after it. The client is answered at the deadline even when a resolver is
 * stuck in a call that ignores the signal; that call's result is dropped.
 * A mutation cut at its deadline may still have committed.
 */
export function useRequestDeadline(timeoutMs: number): Plugin<GraphQLContext> {
  return {
    onExecute({ args, executeFn, setExecuteFn }) {
      const deadline: Deadline | undefined = args.contextValue.deadline;
      if (!deadline) return;
      setExecuteFn(async (executeArgs) => {
        deadline.start(timeoutMs, () => new RequestTimeoutError(timeoutMs));
        try {
          // `signal` is read by graphql-tools' executor, which yoga runs.
          const running = executeFn({ ...executeArgs, signal: deadline.signal } as typeof executeArgs);
          return await Promise.race([running, whenAborted(deadline.signal)]);
        } finally {
          deadline.clear();
        }
      });
    },
  };
}
