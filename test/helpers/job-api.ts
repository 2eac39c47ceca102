import { expect } from 'vitest';
import type { TestApp } from './app.js';
import { waitFor } from './wait-for.js';

export type JobField = 'pipeline' | 'connection';

export interface JobStateView {
  readonly actualState: string;
  readonly actualReason: string | null;
  readonly history: { readonly edges: readonly { readonly node: { readonly state: string; readonly reason: string | null } }[] };
}

/**
 * The API calls tests of real jobs make, as one account (`key()` is read on every call,
 * so a test file can sign up a new account per test).
 */
export function jobApi(app: () => TestApp, key: () => string) {
  async function ok(query: string, variables: Record<string, unknown> = {}) {
    const result = await app().gql(query, variables, { key: key() });
    expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
    return result.data!;
  }

  async function jobState(kind: JobField, id: string): Promise<JobStateView> {
    const data = await ok(`query ($id: ID!) { ${kind}(id: $id) { actualState actualReason history { edges { node { state reason } } } } }`, { id });
    return data[kind] as JobStateView;
  }

  return {
    ok,
    jobState,
    async stream(
      name: string,
      fields: readonly { name: string; type: string; nullable?: boolean }[],
      kind: 'APPEND' | 'CHANGE' = 'APPEND',
      primaryKey: readonly string[] = [],
    ) {
      const data = await ok('mutation ($input: CreateStreamInput!) { createStream(input: $input) { id } }', {
        input: { name, kind, primaryKey, fields },
      });
      return data.createStream.id as string;
    },
    async pipeline(name: string, sql: string, options: Record<string, unknown> = {}) {
      const data = await ok('mutation ($input: CreatePipelineInput!) { createPipeline(input: $input) { id } }', {
        input: { name, sql, ...options },
      });
      return data.createPipeline.id as string;
    },
    async publish(streamId: string, records: readonly Record<string, unknown>[]) {
      const data = await ok('mutation ($id: ID!, $records: [JSON!]!) { publishRecords(streamId: $id, records: $records) { count } }', {
        id: streamId,
        records,
      });
      expect(data.publishRecords.count).toBe(records.length);
    },
    /** Every record of a stream, oldest first, up to `limit`. */
    async records(streamId: string, limit = 1000): Promise<Record<string, any>[]> {
      const data = await ok('query ($id: ID!, $limit: Int) { streamRecords(streamId: $id, from: EARLIEST, limit: $limit) { value } }', {
        id: streamId,
        limit,
      });
      return data.streamRecords.map((r: { value: Record<string, any> }) => r.value);
    },
    until: (kind: JobField, id: string, state: string, timeoutMs = 90_000) =>
      waitFor(`${kind} ${state}`, async () => {
        const s = await jobState(kind, id);
        return s.actualState === state ? s : undefined;
      }, timeoutMs),
  };
}

/** The reasons of a job's transitions, oldest first. */
export const reasonsOf = (s: JobStateView) => s.history.edges.map((e) => e.node.reason);
