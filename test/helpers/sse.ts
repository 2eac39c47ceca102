import type { ExecutionResult } from 'graphql';
import type { TestApp } from './app.js';

/**
 * A subscription over Server-Sent Events (in process, no port): its results, one by one,
 * as they arrive. Leaving the loop (or an error) cancels the stream.
 */
export async function* sseStream(
  t: TestApp,
  query: string,
  variables: Record<string, unknown>,
  key: string | undefined,
  /** Called once the response has arrived (the subscription is set up). */
  onOpen?: () => void,
): AsyncGenerator<ExecutionResult<any>> {
  const abort = new AbortController();
  const response = await t.app.yoga.fetch(
    new Request('http://weir.test/graphql', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        ...(key ? { authorization: `Bearer ${key}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
      signal: abort.signal,
    }),
    { clientAddress: '127.0.0.1' },
  );
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    onOpen?.();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trim())
          .join('\n');
        if (data) yield JSON.parse(data) as ExecutionResult<any>;
      }
    }
  } finally {
    abort.abort();
    await reader.cancel().catch(() => {});
  }
}

/**
 * Starts a subscription over Server-Sent Events (in process) and returns the first
 * `count` results; the stream is cancelled afterwards. `onStarted` runs (not awaited)
 * once the subscription is set up.
 */
export async function sseResults(
  t: TestApp,
  query: string,
  variables: Record<string, unknown>,
  key: string | undefined,
  count = 1,
  onStarted?: () => Promise<void>,
): Promise<ExecutionResult<any>[]> {
  const results: ExecutionResult<any>[] = [];
  for await (const result of sseStream(t, query, variables, key, onStarted && (() => void onStarted()))) {
    results.push(result);
    if (results.length >= count) break;
  }
  return results;
}
