import { readdirSync, readFileSync } from 'node:fs';
import { parse, validate } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIMITS } from '../../src/graphql/limits.js';
import { costLimitRule, DEFAULT_LIST_SIZE } from '../../src/graphql/operation-cost.js';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../../src/graphql/pages.js';
import { buildSchema } from '../../src/graphql/schema.js';
import { codes, startTestApp, type TestApp } from '../helpers/app.js';

/** The estimated cost of each operation of a document (a limit of 0 reports them all). */
function costs(query: string): number[] {
  return validate(buildSchema(), parse(query), [costLimitRule(0)]).map((error) => Number(error.extensions.cost));
}
const cost = (query: string) => costs(query)[0]!;

/** The walk an attacker used: 48 pipelines over one stream made it 9.9 MB and two minutes. */
export const NESTED_WALK =
  'query ($id: ID!) { stream(id: $id) { pipelines { inputStreams { pipelines { inputStreams { pipelines { inputStreams { id } } } } } } } }';

describe('operation cost', () => {
  it('multiplies unpaginated lists by their estimated size, so nested walks grow as their results do', () => {
    const one = cost('{ stream(id: "x") { pipelines { id } } }');
    // stream: 1 + pipelines, DEFAULT_LIST_SIZE × (1 + id)
    expect(one).toBe(1 + DEFAULT_LIST_SIZE * 2);
    const walk = cost(NESTED_WALK);
    expect(walk).toBeGreaterThan(DEFAULT_LIST_SIZE ** 3 * 5 ** 3);
    expect(walk).toBeGreaterThan(LIMITS.maxCost);
  });

  it('counts a connection by the page it asks for', () => {
    const page = (args: string) => cost(`query ($n: Int) { streams${args} { edges { node { id } } pageInfo { hasNextPage } } }`);
    // connection 1 + edges: n × (1 + node (1 + id)) + pageInfo (1 + 1)
    const expected = (n: number) => 1 + n * 3 + 2;
    expect(page('(first: 7)')).toBe(expected(7));
    expect(page('(last: 30)')).toBe(expected(30));
    expect(page('')).toBe(expected(DEFAULT_PAGE_SIZE));
    expect(page('(first: $n)')).toBe(expected(MAX_PAGE_SIZE));
  });

  it('counts fragments where they are spread, inline ones too', () => {
    const direct = cost('{ stream(id: "x") { pipelines { name outputStream { name } } } }');
    expect(cost('{ stream(id: "x") { pipelines { ...P } } } fragment P on Pipeline { name outputStream { name } }')).toBe(direct);
    expect(cost('{ stream(id: "x") { pipelines { ... on Pipeline { name outputStream { name } } } } }')).toBe(direct);
  });

  it('lets every SDK operation through', () => {
    const dir = new URL('../../sdk/operations/', import.meta.url);
    const fragments = readFileSync(new URL('fragments.graphql', dir), 'utf8');
    for (const file of readdirSync(dir).filter((name) => name !== 'fragments.graphql')) {
      const found = costs(readFileSync(new URL(file, dir), 'utf8') + fragments);
      expect(found.length, file).toBeGreaterThan(0);
      for (const value of found) expect(value, file).toBeLessThanOrEqual(LIMITS.maxCost);
    }
  });
});

describe('the cost limit at the gateway', () => {
  let t: TestApp;
  let key: string;
  beforeAll(async () => {
    t = await startTestApp();
    ({ key } = await t.signUp('Cost'));
  });
  afterAll(() => t.close());

  it('refuses the nested walk before running it', async () => {
    const result = await t.gql(NESTED_WALK, { id: 'U3RyZWFtOjAxOTAwMDAwLTAwMDAtNzAwMC04MDAwLTAwMDAwMDAwMDAwMA==' }, { key });
    expect(codes(result)).toEqual(['COST_LIMIT_EXCEEDED']);
    expect(result.errors![0]!.extensions).toMatchObject({ maxCost: LIMITS.maxCost });
    // Not executed: a stream id that does not exist would otherwise be NOT_FOUND.
    expect(result.data).toBeUndefined();
  });
});
