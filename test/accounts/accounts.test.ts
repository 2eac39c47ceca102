import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codes, startTestApp, type TestApp } from '../helpers/app.js';
import { InMemoryRuntime } from '../helpers/in-memory-runtime.js';

let t: TestApp;
const runtime = new InMemoryRuntime();

beforeAll(async () => {
  t = await startTestApp({ runtime });
});
afterAll(() => t.close());

const CREATE_KEY = `mutation ($name: String!, $role: Role!) {
  createApiKey(input: { name: $name, role: $role }) { secret apiKey { id role prefix } }
}`;

describe('signUp', () => {
  it('creates an account and an ADMIN key, returned once and stored only as a keyed hash', async () => {
    const result = await t.gql(`mutation { signUp(input: { name: "Acme Data" }) {
      secret account { id name tier limits { maxActiveJobs maxTaskCount maxConcurrentPreviews } }
      apiKey { id role prefix lastUsedAt revokedAt }
    } }`);
    expect(result.errors).toBeUndefined();
    const { secret, account, apiKey } = result.data!.signUp;
    expect(secret).toMatch(/^weir_[A-Za-z0-9_-]{43}$/); // 32 random bytes
    expect(account).toMatchObject({ name: 'Acme Data', tier: 'FREE', limits: { maxActiveJobs: 2 } });
    expect(apiKey).toMatchObject({ role: 'ADMIN', prefix: secret.slice(0, 13), revokedAt: null });

    const rows = await t.database.db.selectFrom('api_keys').selectAll().execute();
    const row = rows.find((r) => r.prefix === apiKey.prefix)!;
    const stored = JSON.stringify(rows);
    expect(stored).not.toContain(secret);
    // Not a plain hash of the key either: the server secret is part of it.
    expect(Buffer.from(row.key_hash).equals(createHash('sha256').update(secret).digest())).toBe(false);
    expect(runtime.calls).toEqual([]); // nothing runs for an account that runs nothing
  });

  it('lets the key act for its account', async () => {
    const { key, accountId } = await t.signUp('Viewer check');
    const result = await t.gql('{ viewer { id name } }', {}, { key });
    expect(result.data!.viewer).toEqual({ id: accountId, name: 'Viewer check' });
  });

  it('rate-limits signUp per client address', async () => {
    const limited = await startTestApp({ config: { signupRatePerMinute: 3 } });
    try {
      // The test helper varies the address per request; pin one through yoga directly.
      const asAddress = async (address: string) => {
        const response = await limited.app.yoga.fetch(
          new Request('http://weir.test/graphql', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ query: 'mutation { signUp(input: { name: "x" }) { account { id } } }' }),
          }),
          { clientAddress: address },
        );
        return (await response.json()) as { errors?: { extensions: { code: string } }[] };
      };
      for (let i = 0; i < 3; i++) expect((await asAddress('192.0.2.1')).errors).toBeUndefined();
      const fourth = await asAddress('192.0.2.1');
      expect(fourth.errors?.[0]?.extensions.code).toBe('RATE_LIMITED');
      expect((await asAddress('192.0.2.2')).errors).toBeUndefined();
      const accounts = await limited.database.db.selectFrom('accounts').select('id').execute();
      expect(accounts).toHaveLength(4);
    } finally {
      await limited.close();
    }
  });
});

describe('API keys', () => {
  it('rejects a missing, malformed, unknown or badly formed Authorization', async () => {
    expect(codes(await t.gql('{ viewer { id } }'))).toEqual(['UNAUTHENTICATED']);
    const unknown = await t.gql('{ viewer { id } }', {}, { key: `weir_${'A'.repeat(43)}` });
    expect(unknown.status).toBe(401);
    expect(codes(unknown)).toEqual(['UNAUTHENTICATED']);
    expect(codes(await t.gql('{ viewer { id } }', {}, { key: 'not-a-key' }))).toEqual(['UNAUTHENTICATED']);
    const basic = await t.gql('{ viewer { id } }', {}, { headers: { authorization: 'Basic abc' } });
    expect(codes(basic)).toEqual(['UNAUTHENTICATED']);
  });

  it('creates keys with roles, lists them with prefix and last use, and enforces roles', async () => {
    const { key } = await t.signUp('Roles');
    const member = await t.gql(CREATE_KEY, { name: 'ci', role: 'MEMBER' }, { key });
    const viewer = await t.gql(CREATE_KEY, { name: 'dashboard', role: 'VIEWER' }, { key });
    const memberKey = member.data!.createApiKey.secret as string;
    const viewerKey = viewer.data!.createApiKey.secret as string;

    await t.gql('{ viewer { id } }', {}, { key: memberKey });
    const list = await t.gql('{ apiKeys(first: 10) { edges { node { name role prefix lastUsedAt } } } }', {}, { key });
    const nodes = list.data!.apiKeys.edges.map((e: any) => e.node);
    expect(nodes.map((n: any) => [n.name, n.role])).toEqual([
      ['default', 'ADMIN'],
      ['ci', 'MEMBER'],
      ['dashboard', 'VIEWER'],
    ]);
    expect(nodes[1].lastUsedAt).not.toBeNull();
    expect(nodes[1].prefix).toBe(memberKey.slice(0, 13));

    // MEMBER cannot manage keys; VIEWER cannot write.
    expect(codes(await t.gql(CREATE_KEY, { name: 'x', role: 'ADMIN' }, { key: memberKey }))).toEqual(['FORBIDDEN']);
    expect(codes(await t.gql('{ apiKeys { edges { node { id } } } }', {}, { key: memberKey }))).toEqual(['FORBIDDEN']);
    const write = await t.gql(
      'mutation { createStream(input: { name: "s", kind: APPEND, fields: [{ name: "a", type: "INT" }] }) { id } }',
      {},
      { key: viewerKey },
    );
    expect(codes(write)).toEqual(['FORBIDDEN']);
    expect(await t.gql('{ streams { edges { node { id } } } }', {}, { key: viewerKey })).not.toHaveProperty('errors');
  });

  it('revocation takes effect on the next request; the last ADMIN key cannot be revoked', async () => {
    const { key } = await t.signUp('Revoke');
    const created = await t.gql(CREATE_KEY, { name: 'temp', role: 'MEMBER' }, { key });
    const { secret, apiKey } = created.data!.createApiKey;
    expect((await t.gql('{ viewer { id } }', {}, { key: secret })).errors).toBeUndefined();

    const revoked = await t.gql('mutation ($id: ID!) { revokeApiKey(id: $id) { revokedAt } }', { id: apiKey.id }, { key });
    expect(revoked.data!.revokeApiKey.revokedAt).not.toBeNull();
    expect(codes(await t.gql('{ viewer { id } }', {}, { key: secret }))).toEqual(['UNAUTHENTICATED']);
    const again = await t.gql('mutation ($id: ID!) { revokeApiKey(id: $id) { id } }', { id: apiKey.id }, { key });
    expect(codes(again)).toEqual(['CONFLICT']);

    const keys = await t.gql('{ apiKeys { edges { node { id role } } } }', {}, { key });
    const admin = keys.data!.apiKeys.edges.find((e: any) => e.node.role === 'ADMIN').node.id;
    expect(codes(await t.gql('mutation ($id: ID!) { revokeApiKey(id: $id) { id } }', { id: admin }, { key }))).toEqual([
      'CONFLICT',
    ]);
  });

  it('rejects labels that are empty, too long or carry control characters, and writes nothing', async () => {
    const { key } = await t.signUp('Labels');
    const before = await t.database.db.selectFrom('api_keys').select('id').execute();
    for (const name of ['', '   ', 'x'.repeat(4096), 'bad\u0000name', 'right\u202Eleft']) {
      const result = await t.gql(CREATE_KEY, { name, role: 'VIEWER' }, { key });
      expect(codes(result)).toEqual(['VALIDATION']);
      expect(result.errors![0]!.extensions!.field).toEqual(['input', 'name']);
    }
    // Quotes and non-Latin text are fine in a label.
    expect((await t.gql(CREATE_KEY, { name: `O'Brien "ops" 数据`, role: 'VIEWER' }, { key })).errors).toBeUndefined();
    const after = await t.database.db.selectFrom('api_keys').select('id').execute();
    expect(after.length).toBe(before.length + 1);
  });
});
