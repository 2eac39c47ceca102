import { Writable } from 'node:stream';
import { sql } from 'kysely';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { testConfig } from '../../src/config.js';
import { openDatabase } from '../../src/platform/database.js';
import { migrateToLatest } from '../../src/platform/migrator.js';
import { NoRuntime } from '../../src/runtime/no-runtime.js';

describe('unexpected errors', () => {
  it('are masked for the client and logged with the request id the client sees', async () => {
    const lines: Record<string, any>[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    });
    const database = await openDatabase({ databaseUrl: undefined, pgliteDir: 'memory://' });
    await migrateToLatest(database.db);
    const app = buildApp({
      config: testConfig(),
      logger: pino({ level: 'error' }, sink),
      db: database.db,
      secret: 'x'.repeat(40),
      runtime: new NoRuntime(),
    });
    const signUp = await app.yoga.fetch(
      new Request('http://weir.test/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: 'mutation { signUp(input: { name: "m" }) { secret } }' }),
      }),
      { clientAddress: '127.0.0.1' },
    );
    const key = ((await signUp.json()) as any).data.signUp.secret;

    const ask = async (query: string, requestId: string) =>
      (await (
        await app.yoga.fetch(
          new Request('http://weir.test/graphql', {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
            body: JSON.stringify({ query }),
          }),
          { requestId, clientAddress: '127.0.0.1' },
        )
      ).json()) as any;

    // A resolver fails in a way nobody planned for (its table is gone).
    await sql`alter table streams rename to streams_gone`.execute(database.db);
    const failed = await ask('{ streams { edges { node { id } } } }', 'req-resolver');
    expect(failed.errors[0]).toMatchObject({
      message: 'Unexpected error.',
      path: ['streams'],
      extensions: { code: 'INTERNAL_SERVER_ERROR', requestId: 'req-resolver' },
    });
    expect(JSON.stringify(failed)).not.toMatch(/streams_gone|relation|does not exist/);
    expect(lines.find((line) => line.requestId === 'req-resolver')?.err?.message).toMatch(/does not exist/);

    // The database goes away: even authentication fails unexpectedly.
    await database.close();
    const response = await app.yoga.fetch(
      new Request('http://weir.test/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ query: '{ viewer { id } }' }),
      }),
      { requestId: 'req-1234', clientAddress: '127.0.0.1' },
    );
    const body = (await response.json()) as any;
    expect(body.errors).toHaveLength(1);
    expect(body.errors[0].message).toBe('Unexpected error.');
    expect(body.errors[0].extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR', requestId: 'req-1234' });
    expect(JSON.stringify(body)).not.toMatch(/PGlite|closed|stack/i);
    const logged = lines.find((line) => line.requestId === 'req-1234');
    expect(logged?.err?.message).toBeTruthy();
  });
});
