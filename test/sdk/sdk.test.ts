import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createWeirClient, WeirApiError, WeirSocketClosedError, type WeirClient } from '../../sdk/client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * The SDK against a real gateway on a port: HTTP for queries and mutations, graphql-ws
 * for subscriptions. Everything goes through the SDK except driving the reconciler
 * (`app.reconciler.pass()`, instead of waiting for its timer) and noticing when the
 * server has registered a subscription (graphql-ws has no "subscribed" message).
 */

let server: TestServer;
let client: WeirClient;
const clients: WeirClient[] = [];

function connect(apiKey?: string): WeirClient {
  const c = createWeirClient({ url: server.url, ...(apiKey ? { apiKey } : {}) });
  clients.push(c);
  return c;
}

/** Resolves once the server has subscribed `count` more listeners to status events. */
function serverSubscriptions() {
  const spy = vi.spyOn(server.app.services.statusEvents, 'subscribe');
  const start = spy.mock.calls.length;
  return {
    registered: (count = 1) => vi.waitFor(() => expect(spy.mock.calls.length - start).toBeGreaterThanOrEqual(count)),
    restore: () => spy.mockRestore(),
  };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail('expected a rejection'),
    (error: unknown) => error,
  );
}

const fields = [{ name: 'id', type: 'BIGINT' }];

beforeAll(async () => {
  server = await startTestServer();
  const { signUp } = await connect().signUp({ input: { name: 'SDK test' } });
  client = connect(signUp.secret);
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await server?.close();
});

describe('the SDK over a real server', () => {
  it('signs up without a key and reads the account with the key it got', async () => {
    const anonymous = connect();
    const { signUp } = await anonymous.signUp({ input: { name: 'Another account' } });
    expect(signUp.secret).toMatch(/^weir_/);
    expect(signUp.apiKey.role).toBe('ADMIN');
    expect(signUp.account).toMatchObject({ name: 'Another account', tier: 'FREE' });

    const { viewer } = await connect(signUp.secret).viewer();
    expect(viewer).toMatchObject({ id: signUp.account.id, name: 'Another account', tier: 'FREE' });
    expect(viewer.limits.maxActiveJobs).toBeGreaterThan(0);

    const { connectors } = await anonymous.connectors();
    expect(connectors.map((c) => c.name)).toContain('datagen');

    const error = await rejection(anonymous.viewer());
    expect(error).toBeInstanceOf(WeirApiError);
    expect((error as WeirApiError).code).toBe('UNAUTHENTICATED');
  });

  it('creates, reads, updates and deletes streams', async () => {
    const { createStream } = await client.createStream({ input: { name: 'scratch', kind: 'APPEND', fields } });
    expect(createStream.fields).toEqual([{ name: 'id', type: 'BIGINT', nullable: true }]);

    const { updateStream } = await client.updateStream({
      id: createStream.id,
      input: { name: 'scratch_2', fields: [...fields, { name: 'note', type: 'STRING' }] },
    });
    expect(updateStream.name).toBe('scratch_2');
    expect(updateStream.fields.map((f) => f.name)).toEqual(['id', 'note']);
    expect((await client.stream({ id: createStream.id })).stream.name).toBe('scratch_2');

    await client.deleteStream({ id: createStream.id });
    const error = await rejection(client.stream({ id: createStream.id }));
    expect(error).toBeInstanceOf(WeirApiError);
    expect((error as WeirApiError).code).toBe('NOT_FOUND');
  });

  it('runs a pipeline and a connection through activation, with status events over WebSocket', async () => {
    const src = (await client.createStream({ input: { name: 'src', kind: 'APPEND', fields } })).createStream;
    const sink = (await client.createStream({ input: { name: 'sink', kind: 'APPEND', fields } })).createStream;
    const { createConnection: connection } = await client.createConnection({
      input: { name: 'gen', connector: 'datagen', type: 'SOURCE', streamId: src.id, properties: { 'rows-per-second': 5 } },
    });
    expect(connection).toMatchObject({ connector: 'datagen', stream: { id: src.id }, desiredState: 'INACTIVE' });
    expect(connection.properties).toMatchObject({ 'rows-per-second': 5 });

    const { createPipeline: pipeline } = await client.createPipeline({
      input: { name: 'copy', sql: 'INSERT INTO sink SELECT id FROM src' },
    });
    expect(pipeline.inputStreams).toEqual([{ id: src.id, name: 'src' }]);
    expect(pipeline.outputStream).toEqual({ id: sink.id, name: 'sink' });
    const { node } = await client.node({ id: pipeline.id });
    expect(node.__typename).toBe('Pipeline');

    // Subscribe first, then act: the event must come from this activation.
    const subscriptions = serverSubscriptions();
    const events = client.statusChanged({ id: pipeline.id })[Symbol.asyncIterator]();
    const first = events.next();
    await subscriptions.registered();
    subscriptions.restore();

    const { activatePipeline } = await client.activatePipeline({ id: pipeline.id });
    expect(activatePipeline.desiredState).toBe('ACTIVE');
    await server.app.reconciler.pass();

    const failed = await first;
    expect(failed.done).toBe(false);
    expect(failed.value?.statusChanged).toMatchObject({
      jobId: pipeline.id,
      kind: 'PIPELINE',
      desiredState: 'ACTIVE',
      state: 'FAILED',
      reason: expect.stringContaining('runs no Flink'),
    });
    expect((await client.pipeline({ id: pipeline.id })).pipeline).toMatchObject({
      actualState: 'FAILED',
      actualReason: expect.stringContaining('runs no Flink'),
    });

    expect((await client.deactivatePipeline({ id: pipeline.id })).deactivatePipeline.desiredState).toBe('INACTIVE');
    await server.app.reconciler.pass();
    expect((await events.next()).value?.statusChanged).toMatchObject({ jobId: pipeline.id, state: 'STOPPED' });
    await events.return?.();

    const { pipeline: withHistory } = await client.pipelineHistory({ id: pipeline.id, first: 10 });
    expect(withHistory.history.edges.map((e) => e.node.state)).toEqual(['FAILED', 'STOPPED']);

    expect((await client.activateConnection({ id: connection.id })).activateConnection.desiredState).toBe('ACTIVE');
    await server.app.reconciler.pass();
    expect((await client.connection({ id: connection.id })).connection).toMatchObject({
      desiredState: 'ACTIVE',
      actualState: 'FAILED',
    });
    expect((await client.deactivateConnection({ id: connection.id })).deactivateConnection.desiredState).toBe('INACTIVE');

    const { updatePipeline } = await client.updatePipeline({ id: pipeline.id, input: { name: 'copy_2', taskCount: 2 } });
    expect(updatePipeline).toMatchObject({ name: 'copy_2', taskCount: 2 });
    const { updateConnection } = await client.updateConnection({ id: connection.id, input: { name: 'gen_2' } });
    expect(updateConnection.name).toBe('gen_2');
    const { connection: withHistory2 } = await client.connectionHistory({ id: connection.id, last: 1 });
    expect(withHistory2.history.edges.map((e) => e.node.state)).toEqual(['FAILED']);

    expect((await client.deleteConnection({ id: connection.id })).deleteConnection.deletedId).toBe(connection.id);
    expect((await client.connections()).connections.edges.map((e) => e.node.id)).not.toContain(connection.id);
  });

  it('pages through lists with cursors, forwards and backwards', async () => {
    const { signUp } = await connect().signUp({ input: { name: 'Pager' } });
    const pager = connect(signUp.secret);
    await pager.createStream({ input: { name: 'src', kind: 'APPEND', fields } });
    await pager.createStream({ input: { name: 'sink', kind: 'APPEND', fields } });
    const created: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { createPipeline } = await pager.createPipeline({ input: { name: `p${i}`, sql: 'INSERT INTO sink SELECT id FROM src' } });
      created.push(createPipeline.name);
    }

    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const { pipelines } = await pager.pipelines({ first: 2, after });
      pages += 1;
      seen.push(...pipelines.edges.map((e) => e.node.name));
      if (!pipelines.pageInfo.hasNextPage) break;
      after = pipelines.pageInfo.endCursor;
    }
    expect(seen).toEqual(created);
    expect(pages).toBe(3);

    const { pipelines: last } = await pager.pipelines({ last: 2 });
    expect(last.edges.map((e) => e.node.name)).toEqual(['p3', 'p4']);
    const { pipelines: before } = await pager.pipelines({ last: 2, before: last.pageInfo.startCursor });
    expect(before.edges.map((e) => e.node.name)).toEqual(['p1', 'p2']);
    expect(before.pageInfo.hasPreviousPage).toBe(true);

    const { streams } = await pager.streams({ first: 1 });
    expect(streams.edges.map((e) => e.node.name)).toEqual(['src']);
    expect(streams.pageInfo.hasNextPage).toBe(true);
    expect((await pager.connections()).connections.edges).toEqual([]);

    const error = await rejection(pager.pipelines({ first: 1000 }));
    expect((error as WeirApiError).code).toBe('VALIDATION');
  });

  it('answers a bad id with a WeirApiError coded NOT_FOUND', async () => {
    const { signUp } = await connect().signUp({ input: { name: 'Owner' } });
    const owner = connect(signUp.secret);
    await owner.createStream({ input: { name: 'src', kind: 'APPEND', fields } });
    await owner.createStream({ input: { name: 'sink', kind: 'APPEND', fields } });
    const { createPipeline } = await owner.createPipeline({ input: { name: 'gone', sql: 'INSERT INTO sink SELECT id FROM src' } });
    await owner.deletePipeline({ id: createPipeline.id });

    for (const id of [createPipeline.id, 'not-an-id']) {
      const error = await rejection(owner.pipeline({ id }));
      expect(error).toBeInstanceOf(WeirApiError);
      const apiError = error as WeirApiError;
      expect(apiError.code).toBe('NOT_FOUND');
      expect(apiError.errors[0]?.path).toEqual(['pipeline']);
      expect(apiError.status).toBe(200);
    }
    // Another account's object is just as unknown.
    const error = await rejection(client.node({ id: createPipeline.id }));
    expect((error as WeirApiError).code).toBe('NOT_FOUND');
  });

  it("closes a revoked key's open subscription with 4401", async () => {
    const { createApiKey } = await client.createApiKey({ input: { name: 'dashboard', role: 'VIEWER' } });
    const viewer = connect(createApiKey.secret);

    const subscriptions = serverSubscriptions();
    const events = viewer.statusChanged()[Symbol.asyncIterator]();
    const next = events.next();
    await subscriptions.registered();
    subscriptions.restore();
    expect(server.http.ws.clients()).toBeGreaterThan(0);

    const { revokeApiKey } = await client.revokeApiKey({ id: createApiKey.apiKey.id });
    expect(revokeApiKey.revokedAt).not.toBeNull();

    const error = await rejection(next);
    expect(error).toBeInstanceOf(WeirSocketClosedError);
    expect((error as WeirSocketClosedError).code).toBe(4401);

    const refused = await rejection(viewer.viewer());
    expect((refused as WeirApiError).code).toBe('UNAUTHENTICATED');
    expect((refused as WeirApiError).status).toBe(401);

    const { apiKeys } = await client.apiKeys({ first: 10 });
    expect(apiKeys.edges.find((e) => e.node.id === createApiKey.apiKey.id)?.node.revokedAt).toBe(revokeApiKey.revokedAt);
  });
});
