import type { CodegenConfig } from '@graphql-codegen/cli';

/**
 * `npm run codegen`: the typed SDK in sdk/generated.ts, from the committed schema and the
 * operations in sdk/operations. The output is committed (integrators import it) and must
 * compile under the repo's strict tsconfig, hence type-only imports, string-literal
 * enums and explicit scalar types.
 */
const config: CodegenConfig = {
  overwrite: true,
  schema: 'schema/schema.graphql',
  documents: 'sdk/operations/*.graphql',
  generates: {
    'sdk/generated.ts': {
      plugins: ['typescript-operations', 'typescript-generic-sdk'],
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        // Parsed documents: the requester reads the operation type from the AST. (The
        // `string` mode of typescript-generic-sdk 5 emits a TypedDocumentString class it
        // never defines, so it does not compile.)
        documentMode: 'documentNode',
        strictScalars: true,
        scalars: {
          DateTime: 'string',
          JSON: 'unknown',
        },
        // Results carry __typename only where an operation asks for it (node).
        skipTypename: true,
        avoidOptionals: false,
      },
    },
  },
};

export default config;
