import { FlinkSQL } from 'dt-sql-parser';
import { FlinkSqlParser } from 'dt-sql-parser/dist/lib/flink/FlinkSqlParser.js';
import { FlinkSqlLexer } from 'dt-sql-parser/dist/lib/flink/FlinkSqlLexer.js';
import type { ParserRuleContext, ParseTree } from 'antlr4ng';
const f = new FlinkSQL();
function dump(n: ParseTree, d = 0): string {
  const anyN = n as any;
  if (anyN.ruleIndex !== undefined && anyN.children !== undefined) {
    const name = FlinkSqlParser.ruleNames[anyN.ruleIndex];
    const kids = (anyN.children ?? []).map((c: ParseTree) => dump(c, d + 1)).join('');
    return `${'  '.repeat(d)}${name}\n${kids}`;
  }
  return `${'  '.repeat(d)}'${n.getText()}'\n`;
}
for (const sql of process.argv.slice(2)) {
  const errs: any[] = [];
  const tree = f.parse(sql, (e) => errs.push(e));
  console.log('=== ', sql);
  console.log(errs);
  console.log(dump(tree));
  const toks = f.createLexer(sql, () => {}).getAllTokens();
  console.log(toks.map((t) => `${FlinkSqlLexer.symbolicNames[t.type]}:${JSON.stringify(t.text)}@${t.line}:${t.column}/ch${t.channel}`).join(' '));
}
