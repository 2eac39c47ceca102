import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));

/**
 * printWeirSchema() runs in a child process under tsx, exactly as `npm run schema:print`
 * runs it, so the check does not depend on how vitest resolves graphql (with vitest's
 * default resolution, Pothos and src/ get different copies of graphql, index.js and
 * index.mjs, and graphql refuses to print across them).
 */
async function printWeirSchema(): Promise<string> {
  const script = "import { printWeirSchema } from './src/graphql/schema.ts'; process.stdout.write(printWeirSchema());";
  const tsx = join(root, 'node_modules', '.bin', 'tsx');
  const { stdout } = await promisify(execFile)(tsx, ['--eval', script], { cwd: root, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

it('schema/schema.graphql is the schema the code builds', async () => {
  const [committed, printed] = await Promise.all([
    readFile(join(root, 'schema', 'schema.graphql'), 'utf8'),
    printWeirSchema(),
  ]);
  expect(printed.length).toBeGreaterThan(0);
  expect(committed, 'schema/schema.graphql is out of date: run `npm run schema:print` and commit it').toBe(printed);
});
