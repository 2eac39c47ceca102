import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../src/platform/net.js';
import { FlinkRestError } from '../../src/flink/flink-rest.js';
import {
  asStatementError,
  FetchBackoff,
  FlinkStatementError,
  SqlGatewayClient,
  SqlGatewayUnavailableError,
  typeName,
} from '../../src/preview/sql-gateway-client.js';

describe('FetchBackoff', () => {
  it('polls fast (at most 50 ms apart) until the first row, then backs off to 250 ms', () => {
    const backoff = new FetchBackoff();
    const beforeFirstRow = Array.from({ length: 8 }, () => backoff.next(0));
    expect(beforeFirstRow).toEqual([10, 20, 40, 50, 50, 50, 50, 50]);
    expect(backoff.next(3)).toBe(0);
    const afterRows = Array.from({ length: 8 }, () => backoff.next(0));
    expect(afterRows).toEqual([10, 20, 40, 80, 160, 250, 250, 250]);
    expect(backoff.next(1)).toBe(0);
    expect(backoff.next(0)).toBe(10);
  });
});

describe('SQL Gateway answers', () => {
  it('names Flink logical types as SQL', () => {
    expect(typeName({ type: 'DECIMAL', precision: 12, scale: 2, nullable: false })).toBe('DECIMAL(12, 2) NOT NULL');
    expect(typeName({ type: 'VARCHAR', length: 2147483647 })).toBe('STRING');
    expect(typeName({ type: 'ROW', fields: [{ name: 'a', fieldType: { type: 'BIGINT' } }] })).toBe('ROW<`a` BIGINT>');
    expect(typeName({ type: 'TIMESTAMP_WITH_LOCAL_TIME_ZONE', precision: 3 })).toBe('TIMESTAMP_LTZ(3)');
  });

  it("keeps the one line of Flink's exception chain that says what and where", () => {
    const error = asStatementError(
      new FlinkRestError(400, 'http://gateway/v2/sessions/s/operations/o/result/0', [
        'org.apache.flink.table.gateway.api.utils.SqlGatewayException: Failed to fetchResults.\n' +
          '\tat org.apache.flink.Foo.bar(Foo.java:1)\n' +
          'Caused by: org.apache.flink.table.api.ValidationException: SQL validation failed. From line 1, column 8 to line 1, column 10: Column \'idd\' not found in any table\n' +
          '\tat org.apache.flink.Baz.qux(Baz.java:2)',
      ]),
    );
    expect(error).toBeInstanceOf(FlinkStatementError);
    expect((error as FlinkStatementError).message).toBe("SQL validation failed. From line 1, column 8 to line 1, column 10: Column 'idd' not found in any table");
    expect([(error as FlinkStatementError).line, (error as FlinkStatementError).column]).toEqual([1, 8]);
  });
});

describe('opening a session on a SQL Gateway that is not up yet', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
  });

  /** A SQL Gateway stand-in: answers each POST /v2/sessions with the next status in `statuses`, then 200. */
  async function gateway(statuses: number[]): Promise<{ url: string; requests: () => number }> {
    let requests = 0;
    const server = createServer((request, response) => {
      requests += 1;
      const status = statuses.shift() ?? 200;
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(status === 200 ? { sessionHandle: `session-${requests}` } : { errors: [`status ${status}`] }));
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => requests };
  }

  it('tries again while a proxy says the gateway behind it is not there (502/503/504)', async () => {
    const { url, requests } = await gateway([503, 502, 504]);
    expect(await new SqlGatewayClient(url).openSession('s', {}, { waitMs: 10_000 })).toBe('session-4');
    expect(requests()).toBe(4);
  });

  it('does not try again on an answer that is final (400), nor without waitMs', async () => {
    const refused = await gateway([400]);
    await expect(new SqlGatewayClient(refused.url).openSession('s', {}, { waitMs: 10_000 })).rejects.toBeInstanceOf(FlinkRestError);
    expect(refused.requests()).toBe(1);
    const starting = await gateway([503]);
    await expect(new SqlGatewayClient(starting.url).openSession('s', {})).rejects.toMatchObject({ status: 503 });
    expect(starting.requests()).toBe(1);
  });

  it('gives up after waitMs on a port nothing listens on, saying where and why', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const started = Date.now();
    const error = await new SqlGatewayClient(url).openSession('s', {}, { waitMs: 1_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SqlGatewayUnavailableError);
    expect((error as Error).message).toBe(`The SQL Gateway (${url}) did not answer within 1 s: fetch failed (ECONNREFUSED)`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
  });

  it('stops trying at once when the preview is cancelled', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const abort = new AbortController();
    const opening = new SqlGatewayClient(url).openSession('s', {}, { waitMs: 60_000, signal: abort.signal });
    abort.abort();
    // Were it to go on trying, this would wait 60 s (and the test time out at 30 s).
    const error = await opening.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(SqlGatewayUnavailableError);
  });
});
