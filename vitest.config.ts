import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // graphql 16 ships CommonJS (main) and ESM (module) builds. Node, and so graphql-ws,
    // graphql-armor and yoga under `npm start`, load the CommonJS one; Vite would pick
    // the ESM one for our sources. Two copies mean two GraphQLError classes, so pin one.
    alias: { graphql: require.resolve('graphql') },
  },
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    // Builds what the selected tests need (Flink/Kafka jars, the Kubernetes test binaries)
    // and checks the prerequisites, once, before any test and its timeout starts.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
