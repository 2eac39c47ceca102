import { sql } from 'kysely';
import type { App } from '../../src/app.js';
import { createHttpServer, type HttpServer } from '../../src/http/server.js';
import { startTestApp, type TestApp } from './app.js';

export interface TestServer {
  /** The GraphQL endpoint, e.g. http://127.0.0.1:41234/graphql. */
  readonly url: string;
  readonly app: App;
  readonly http: HttpServer;
  /** The in-process side of the same gateway, for setup a test does not route over HTTP. */
  readonly testApp: TestApp;
  close(): Promise<void>;
}

/** The gateway on a real port (0: any free one) over an in-memory PGlite, as `npm start` serves it. */
export async function startTestServer(options: Parameters<typeof startTestApp>[0] = {}): Promise<TestServer> {
  const testApp = await startTestApp(options);
  const http = createHttpServer({
    app: testApp.app,
    config: { ...testApp.config, host: '127.0.0.1', port: 0 },
    ready: async () => void (await sql`select 1`.execute(testApp.database.db)),
  });
  await http.listen();
  return {
    url: `${http.url()}/graphql`,
    app: testApp.app,
    http,
    testApp,
    async close() {
      await http.close();
      await testApp.close();
    },
  };
}

/**
 * One GraphQL request to a gateway listening on 127.0.0.1:`port` (a child process, say);
 * the data, or an error carrying the GraphQL errors.
 */
export async function postGraphql(port: number, key: string, query: string, variables: Record<string, unknown> = {}): Promise<any> {
  const response = await fetch(`http://127.0.0.1:${port}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: unknown; errors?: unknown[] };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}
