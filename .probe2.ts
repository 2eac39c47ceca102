import { readFileSync } from 'node:fs';
import { FlinkSQL } from 'dt-sql-parser';
import { FlinkSqlParser } from 'dt-sql-parser/dist/lib/flink/FlinkSqlParser.js';
import type { ParseTree } from 'antlr4ng';
const f = new FlinkSQL();
function paths(n: ParseTree, trail: string[], out: string[]) {
  const a = n as any;
  if (a.ruleIndex === undefined) return;
  const name = FlinkSqlParser.ruleNames[a.ruleIndex]!;
  const t = [...trail, name];
  if (name === 'tablePath' || name === 'viewPath' || name === 'timeAttrColumn' || name === 'withItemName') { out.push(`${n.getText()} <- ${t.slice(-5).join('>')}`); }
  for (const c of a.children ?? []) paths(c, t, out);
}
const lines = readFileSync(0, 'utf8').split('\n====\n');
for (const sql of lines) {
  if (!sql.trim()) continue;
  const errs: any[] = [];
  const tree = f.parse(sql, (e) => errs.push(e));
  const out: string[] = [];
  paths(tree, [], out);
  const stmts = tree.singleStatement().map((s) => s.getText().slice(0, 30));
  console.log('=== ', sql.replace(/\n/g, '\\n'));
  console.log('  errors', errs.map((e) => `${e.startLine}:${e.startColumn} ${e.message}`));
  console.log('  stmts', stmts);
  for (const o of out) console.log('  ', o);
}
