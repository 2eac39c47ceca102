import type { Plugin } from '@envelop/core';
import {
  GraphQLError,
  getNamedType,
  getNullableType,
  isCompositeType,
  isInterfaceType,
  isListType,
  isObjectType,
  Kind,
  type ASTVisitor,
  type FieldNode,
  type GraphQLCompositeType,
  type GraphQLField,
  type SelectionSetNode,
  type ValidationContext,
  type ValueNode,
} from 'graphql';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './pages.js';

/**
 * What an unpaginated list is assumed to hold when its field declares no `listSize`:
 * the FREE tier's object count. A field that lists an account's objects (a stream's
 * pipelines) takes this; fields with known small sizes declare theirs.
 */
export const DEFAULT_LIST_SIZE = 50;

/** Field extensions the cost rule reads: `t.field({ ..., extensions: costOf({ listSize: 5 }) })`. */
export interface FieldCost {
  /** How many items a list field is assumed to return. */
  readonly listSize?: number;
}

export const costOf = (cost: FieldCost) => ({ cost });

/**
 * The cost of an operation, from the schema: a leaf costs 1, an object field 1 plus its
 * selections, times the number of items it is expected to return. A connection's
 * `edges` count `first`/`last` items (a variable: the largest page, `MAX_PAGE_SIZE`;
 * neither: `DEFAULT_PAGE_SIZE`); any other list counts its declared `listSize`, or
 * `DEFAULT_LIST_SIZE`. Nested lists multiply, so a walk such as
 * stream → pipelines → inputStreams → pipelines → … grows as the product of its lists,
 * as its result would. Introspection is free.
 */
export class OperationCost {
  private readonly fragmentCosts = new Map<string, number>();

  constructor(private readonly context: ValidationContext) {}

  ofSelections(set: SelectionSetNode, parent: GraphQLCompositeType, pageSize?: number): number {
    let cost = 0;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        cost += this.ofField(selection, parent, pageSize);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const type = selection.typeCondition ? this.context.getSchema().getType(selection.typeCondition.name.value) : parent;
        if (type && isCompositeType(type)) cost += this.ofSelections(selection.selectionSet, type, pageSize);
      } else {
        cost += this.ofFragment(selection.name.value, pageSize);
      }
    }
    return cost;
  }

  private ofFragment(name: string, pageSize: number | undefined): number {
    const key = `${name}/${pageSize ?? ''}`;
    const known = this.fragmentCosts.get(key);
    if (known !== undefined) return known;
    // A cycle costs nothing here; the NoFragmentCycles rule refuses it.
    this.fragmentCosts.set(key, 0);
    const fragment = this.context.getFragment(name);
    const type = fragment && this.context.getSchema().getType(fragment.typeCondition.name.value);
    const cost = fragment && type && isCompositeType(type) ? this.ofSelections(fragment.selectionSet, type, pageSize) : 0;
    this.fragmentCosts.set(key, cost);
    return cost;
  }

  /** `pageSize`: set when `parent` is a connection, whose `edges` hold a page. */
  private ofField(node: FieldNode, parent: GraphQLCompositeType, pageSize: number | undefined): number {
    if (node.name.value.startsWith('__')) return 0;
    if (!isObjectType(parent) && !isInterfaceType(parent)) return 0;
    const field = parent.getFields()[node.name.value];
    if (!field) return 0;
    const type = getNamedType(field.type);
    if (!node.selectionSet || !isCompositeType(type)) return 1;
    const page = isConnectionField(field) ? requestedPageSize(node) : undefined;
    const items = isListType(getNullableType(field.type))
      ? (pageSize ?? (field.extensions as { cost?: FieldCost }).cost?.listSize ?? DEFAULT_LIST_SIZE)
      : 1;
    return items * (1 + this.ofSelections(node.selectionSet, type, page));
  }
}

const isConnectionField = (field: GraphQLField<unknown, unknown>) =>
  field.args.some((arg) => arg.name === 'first' || arg.name === 'last');

function requestedPageSize(node: FieldNode): number {
  let size: number | undefined;
  for (const argument of node.arguments ?? []) {
    if (argument.name.value !== 'first' && argument.name.value !== 'last') continue;
    const value = pageArgument(argument.value);
    if (value !== undefined) size = Math.max(size ?? 0, value);
  }
  return size ?? DEFAULT_PAGE_SIZE;
}

/** A literal is what it says; a variable may be anything up to the largest page. */
function pageArgument(value: ValueNode): number | undefined {
  if (value.kind === Kind.INT) return Math.max(0, Number.parseInt(value.value, 10));
  if (value.kind === Kind.VARIABLE) return MAX_PAGE_SIZE;
  return undefined;
}

export function costLimitRule(maxCost: number) {
  return (context: ValidationContext): ASTVisitor => ({
    OperationDefinition(operation) {
      const root = context.getSchema().getRootType(operation.operation);
      if (!root) return;
      const cost = new OperationCost(context).ofSelections(operation.selectionSet, root);
      if (cost <= maxCost) return;
      context.reportError(
        new GraphQLError(`The operation's estimated cost ${cost} exceeds the limit of ${maxCost}; ask for fewer items or less nesting.`, {
          nodes: operation,
          extensions: { code: 'COST_LIMIT_EXCEEDED', cost, maxCost },
        }),
      );
    },
  });
}

/** Refuses, at validation (HTTP and WebSocket alike), operations that cost more than `maxCost`. */
export function useCostLimit(maxCost: number): Plugin {
  return {
    onValidate({ addValidationRule }) {
      addValidationRule(costLimitRule(maxCost));
    },
  };
}
