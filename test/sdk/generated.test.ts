import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generate } from '@graphql-codegen/cli';
import { expect, it } from 'vitest';
import codegenConfig from '../../codegen.js';

// In a file of its own: @graphql-codegen/cli loads a second copy of graphql (CommonJS),
// and graphql refuses to mix its types with the gateway's schema in one process.
const root = fileURLToPath(new URL('../../', import.meta.url));

it('sdk/generated.ts is what `npm run codegen` makes of schema/schema.graphql and sdk/operations', async () => {
  // In memory, nothing written; the same config as `npm run codegen`.
  const outputs = await generate({ ...codegenConfig, cwd: root, silent: true }, false);
  const generated = outputs.find((output: { filename: string }) => output.filename.endsWith('sdk/generated.ts'));
  expect(generated, 'codegen.ts no longer writes sdk/generated.ts').toBeDefined();
  const committed = await readFile(join(root, 'sdk', 'generated.ts'), 'utf8');
  expect(committed, 'sdk/generated.ts is out of date: run `npm run codegen` and commit it').toBe(generated.content);
});
