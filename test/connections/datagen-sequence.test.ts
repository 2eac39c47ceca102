import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codes, startTestApp, type TestApp } from '../helpers/app.js';

/** A datagen sequence lives in the job's heap: one too long for its task size is refused up front. */
let t: TestApp;
let key: string;
let streamId: string;

const CREATE = `mutation ($input: CreateConnectionInput!) { createConnection(input: $input) { id taskSize } }`;
const UPDATE = `mutation ($id: ID!, $input: UpdateConnectionInput!) { updateConnection(id: $id, input: $input) { id taskSize } }`;
const sequence = (end: number) => ({ 'fields.id.kind': 'sequence', 'fields.id.start': 0, 'fields.id.end': end });
const create = (name: string, properties: Record<string, unknown>, taskSize?: 'S' | 'M' | 'L') =>
  t.gql(CREATE, { input: { name, connector: 'datagen', type: 'SOURCE', streamId, properties, ...(taskSize ? { taskSize } : {}) } }, { key });

beforeAll(async () => {
  t = await startTestApp();
  ({ key } = await t.signUp('Sequences'));
  const stream = await t.gql(
    'mutation { createStream(input: { name: "ids", kind: APPEND, fields: [{ name: "id", type: "BIGINT" }, { name: "n", type: "BIGINT" }] }) { id } }',
    {},
    { key },
  );
  streamId = stream.data!.createStream.id;
});
afterAll(() => t.close());

describe('datagen sequences', () => {
  it('refuses a range that cannot fit in the job’s heap, naming the limit', async () => {
    const result = await create('huge', sequence(2_000_000_000));
    expect(codes(result)).toEqual(['VALIDATION']);
    const problems = result.errors![0]!.extensions!.problems as { path: string[]; message: string }[];
    expect(problems).toEqual([
      {
        path: ['input', 'properties', 'fields.id.end'],
        message: expect.stringContaining('the sequence holds 2000000001 values, more than the 2048000 that fit in task size S (256 MB heap)'),
      },
    ]);
  });

  it('accepts what fits, up to the limit of each task size', async () => {
    expect((await create('s_max', sequence(2_048_000 - 1))).errors).toBeUndefined();
    expect(codes(await create('s_over', sequence(2_048_000)))).toEqual(['VALIDATION']);
    expect((await create('l_big', sequence(8_000_000), 'L')).errors).toBeUndefined();
  });

  it('adds up the sequences of one connection: they share the heap', async () => {
    const result = await create('two', { ...sequence(1_500_000), 'fields.n.kind': 'sequence', 'fields.n.start': 1, 'fields.n.end': 1_000_000 });
    expect(codes(result)).toEqual(['VALIDATION']);
    const problems = result.errors![0]!.extensions!.problems as { path: string[]; message: string }[];
    expect(problems.map((p) => p.path.at(-1))).toEqual(['fields.id.end', 'fields.n.end']);
    expect(problems[0]!.message).toMatch(/these 2 sequences hold 2500001 values together/);
  });

  it('refuses an update that makes the range too long, or the task size too small for it', async () => {
    const created = await create('resized', sequence(3_000_000), 'M');
    expect(created.errors).toBeUndefined();
    const id = created.data!.createConnection.id;
    expect(codes(await t.gql(UPDATE, { id, input: { properties: sequence(2_000_000_000) } }, { key }))).toEqual(['VALIDATION']);
    const smaller = await t.gql(UPDATE, { id, input: { taskSize: 'S' } }, { key });
    expect(codes(smaller)).toEqual(['VALIDATION']);
    expect(smaller.errors![0]!.message).toMatch(/fit in task size S/);
    expect((await t.gql(UPDATE, { id, input: { taskSize: 'L' } }, { key })).data!.updateConnection.taskSize).toBe('L');
  });
});
