import type { ExecutionResult } from 'graphql';
import type { TestApp } from './app.js';

/**
 * Starts a subscription over Server-Sent Events (in process) and returns the first
 * `count` results; the stream is cancelled afterwards.
 */
export async function sseResults(
  t: TestApp,
  query: string,
  variables: Record<string, unknown>,
  key: string | undefined,
  count = 1,
  onStarted?: () => Promise<void>,
): Promise<ExecutionResult<any>[]> {
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
  const results: ExecutionResult<any>[] = [];
  let buffer = '';
  let started = false;
  try {
    while (results.length < count) {
      if (!started && onStarted) {
        started = true;
        void onStarted();
      }
      const { value, done } = await reader.read();
      if (done) break;
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
        if (data) results.push(JSON.parse(data));
      }
    }
  } finally {
    abort.abort();
    await reader.cancel().catch(() => {});
  }
  return results;
}
