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
