import {
  QueryStatementContext,
  TablePathContext,
  TimeAttrColumnContext,
  ViewPathContext,
  WindowTVFParamContext,
} from 'dt-sql-parser/dist/lib/flink/FlinkSqlParser.js';
import type { IdentifierContext } from 'dt-sql-parser/dist/lib/flink/FlinkSqlParser.js';
import { tokenPosition } from './sql-position.js';
import type { SqlPosition } from './sql-position.js';

/** A table named in SQL, e.g. `db.t` in `FROM db.t`. */
export interface TableReference {
  /** Path parts with backticks removed: `a`.`b``c` gives ["a", "b`c"]. */
  readonly parts: readonly string[];
  /** As written, for messages. */
  readonly text: string;
  readonly position: SqlPosition;
}

/** antlr4ng's ParserRuleContext, named through dt-sql-parser whose dependency it is. */
type RuleNode = NonNullable<QueryStatementContext['parent']>;
type TreeNode = NonNullable<RuleNode['children']>[number];

/**
 * Every table a query reads, in order of appearance: FROM and JOIN items, subqueries
 * anywhere (WHERE, IN, EXISTS, set operations) and `TABLE t` in window functions such
 * as TUMBLE. References to a common table expression in scope are not tables.
 */
export function collectTableReferences(query: QueryStatementContext): TableReference[] {
  const found: TableReference[] = [];
  visit(query, new Set(), found);
  return found;
}

export function tableReference(path: TablePathContext | ViewPathContext): TableReference {
  return referenceOf(path.identifier(), path);
}

/**
 * Flink resolves names case-sensitively; backticks only quote, with a doubled backtick
 * standing for one. Anything else (a 'quoted' name, which Flink rejects) is kept as
 * written so that it never matches a stream.
 */
export function identifierName(identifier: IdentifierContext): string {
  const text = identifier.getText();
  if (text.length >= 2 && text.startsWith('`') && text.endsWith('`')) {
    return text.slice(1, -1).replaceAll('``', '`');
  }
  return text;
}

function visit(node: RuleNode, cteNames: ReadonlySet<string>, found: TableReference[]): void {
  if (node instanceof QueryStatementContext) {
    visitQuery(node, cteNames, found);
  } else if (node instanceof TablePathContext || node instanceof ViewPathContext) {
    addUnlessCte(tableReference(node), cteNames, found);
  } else if (isWindowTableArgument(node)) {
    addUnlessCte(referenceOf(node.uid().identifier(), node), cteNames, found);
  } else {
    visitChildren(node, cteNames, found);
  }
}

/**
 * Returns the CTE names in scope after `query`. dt-sql-parser nests
 * `WITH x AS (...) SELECT .. FROM x UNION SELECT .. FROM x` as UNION(WITH(..), SELECT),
 * yet the WITH covers both operands, so a leading WITH's names flow on to the right.
 */
function visitQuery(query: QueryStatementContext, outer: ReadonlySet<string>, found: TableReference[]): ReadonlySet<string> {
  const withClause = query.withClause();
  if (withClause) {
    // An item sees the items before it but not itself (Flink has no recursive CTEs),
    // so in `WITH s AS (SELECT * FROM s)` the inner `s` is a real table.
    const cteNames = new Set(outer);
    for (const item of withClause.withItem()) {
      visit(item.queryStatement(), cteNames, found);
      cteNames.add(identifierName(item.withItemName().identifier()));
    }
    for (const body of query.queryStatement()) visit(body, cteNames, found);
    return cteNames;
  }
  const left = query._left;
  if (!left || !query._right) {
    visitChildren(query, outer, found);
    return outer;
  }
  let cteNames = outer;
  for (const child of query.children ?? []) {
    if (child === left) cteNames = visitQuery(left, outer, found);
    else if (isRuleNode(child)) visit(child, cteNames, found);
  }
  return cteNames;
}

function visitChildren(node: RuleNode, cteNames: ReadonlySet<string>, found: TableReference[]): void {
  for (const child of node.children ?? []) {
    if (isRuleNode(child)) visit(child, cteNames, found);
  }
}

/** `TABLE t` in `TUMBLE(TABLE t, ...)`; without TABLE the rule names a time column. */
function isWindowTableArgument(node: RuleNode): node is TimeAttrColumnContext {
  return (
    node instanceof TimeAttrColumnContext &&
    node.parent instanceof WindowTVFParamContext &&
    node.parent.KW_TABLE() !== null
  );
}

function addUnlessCte(reference: TableReference, cteNames: ReadonlySet<string>, found: TableReference[]): void {
  const [only, ...rest] = reference.parts;
  if (only !== undefined && rest.length === 0 && cteNames.has(only)) return;
  found.push(reference);
}

function referenceOf(identifiers: readonly IdentifierContext[], node: RuleNode): TableReference {
  return {
    parts: identifiers.map(identifierName),
    text: node.getText(),
    position: node.start ? tokenPosition(node.start) : { line: 1, column: 1 },
  };
}

function isRuleNode(node: TreeNode): node is RuleNode {
  return 'ruleIndex' in node;
}
