import { parseFlinkType, isCompatibleWidening } from './src/streams/flink-types.js';
for (const t of process.argv.slice(2)) {
  try { console.log(JSON.stringify(t), '->', JSON.stringify(parseFlinkType(t))); } catch (e) { console.log(JSON.stringify(t), 'ERR', (e as Error).message); }
}
console.log(isCompatibleWidening('INT', 'BIGINT'), isCompatibleWidening('VARCHAR(10)', 'STRING'), isCompatibleWidening('CHAR(3)', 'STRING'), isCompatibleWidening('DECIMAL(10, 2)', 'DECIMAL(12, 2)'), isCompatibleWidening('BIGINT', 'INT'));
