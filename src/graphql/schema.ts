import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { builder } from './builder.js';
// Each import registers its types and fields on the builder.
import './scalars.js';
import './node.js';
import '../accounts/account.schema.js';
import '../streams/stream.schema.js';
import '../streams/records.schema.js';
import '../jobs/job.schema.js';
import '../jobs/status.schema.js';
import '../connections/connection.schema.js';
import '../pipelines/pipeline.schema.js';
import '../preview/preview.schema.js';

let schema: GraphQLSchema | undefined;

export function buildSchema(): GraphQLSchema {
  schema ??= builder.toSchema({ sortSchema: true });
  return schema;
}

/** The schema as committed in schema/schema.graphql. */
export function printWeirSchema(): string {
  return `${printSchema(lexicographicSortSchema(buildSchema()))}\n`;
}
