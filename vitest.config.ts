import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);
const E2E = 'test/runtime/kubernetes/e2e/**/*.test.ts';

export default defineConfig({
  resolve: {
    // graphql 16 ships CommonJS (main) and ESM (module) builds. Node, and so graphql-ws,
    // graphql-armor and yoga under `npm start`, load the CommonJS one; Vite would pick
    // the ESM one for our sources. Two copies mean two GraphQLError classes, so pin one.
    alias: { graphql: require.resolve('graphql') },
  },
  test: {
    // Builds what the selected tests need (Flink/Kafka jars, the Kubernetes test binaries)
    // and checks the prerequisites, once, before any test and its timeout starts.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: {
          name: 'weir',
          include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
          exclude: [E2E],
          // Two files at a time even on 2 cores (vitest's default there is one): most of a
          // file's time is spent waiting for a JVM, Kafka or Postgres, and the waits overlap.
          // On 2 cores the group ran in 583 s so, its files' own times adding up to 1,098 s.
          maxWorkers: Math.max(2, availableParallelism() - 1),
        },
      },
      // The single-node cluster runs a kubelet, the operator and Flink JVMs: beside the
      // suites that time JVM starts on 2 cores it made them miss their deadlines, so it
      // runs on its own, after them (groups run in groupOrder, one after another), and
      // its files one at a time: there is one node per machine.
      { extends: true, test: { name: 'node-e2e', include: [E2E], sequence: { groupOrder: 1 }, fileParallelism: false } },
    ],
  },
});
