/** `npm run schema:print`: writes the printed, sorted schema to schema/schema.graphql. */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { printWeirSchema } from '../graphql/schema.js';

const target = fileURLToPath(new URL('../../schema/schema.graphql', import.meta.url));
await writeFile(target, printWeirSchema());
process.stdout.write(`wrote ${target}\n`);
