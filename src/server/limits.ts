/**
 * Limits on GraphQL operations (depth, estimated cost, aliases, introspection) as validation rules, so that HTTP and
 * WebSocket run exactly the same checks; and the per-user token bucket that paces model requests.
 */
import {
  type ASTVisitor,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  GraphQLError,
  type GraphQLSchema,
  getNamedType,
  getNullableType,
  isListType,
  isObjectType,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
  specifiedRules,
  validate,
  type ValidationContext,
  type ValidationRule,
  type ValueNode,
} from 'graphql';
import type { Limits } from './config.ts';

/** Fields that return a list whose length is bounded by a `first` argument (connections). */
const PAGED_DEFAULT = 20;
/** Lists without a page argument (a conversation's turns, an image's children) are assumed this long. */
const UNPAGED_LIST = 20;

function tooComplex(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'QUERY_TOO_COMPLEX' } });
}

interface Walk {
  depth: number;
  cost: number;
  aliases: number;
}

/**
 * Measures every operation of a document: depth (nesting of fields, fragments inlined), cost (1 per field, times
 * the page size of enclosing lists) and aliases. Fragment cycles are left to the standard NoFragmentCycles rule.
 */
function measure(
  operation: OperationDefinitionNode,
  fragments: Map<string, FragmentDefinitionNode>,
  variables: Record<string, unknown> | undefined,
  listFields: ReadonlySet<string>,
  maxPageSize: number,
): Walk {
  const walk: Walk = { depth: 0, cost: 0, aliases: 0 };
  const visit = (set: SelectionSetNode, depth: number, multiplier: number, seen: Set<string>): void => {
    if (depth > walk.depth) walk.depth = depth;
    if (depth > 200) return;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        if (selection.alias !== undefined) walk.aliases += 1;
        walk.cost += multiplier;
        if (selection.selectionSet !== undefined) {
          const factor = listFactor(selection, variables, listFields, maxPageSize);
          visit(selection.selectionSet, depth + 1, Math.min(multiplier * factor, 1e9), seen);
        }
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        visit(selection.selectionSet, depth, multiplier, seen);
      } else {
        const name = selection.name.value;
        const fragment = fragments.get(name);
        if (fragment === undefined || seen.has(name)) continue;
        visit(fragment.selectionSet, depth, multiplier, new Set([...seen, name]));
      }
    }
  };
  visit(operation.selectionSet, 0, 1, new Set());
  return walk;
}

function listFactor(
  field: FieldNode,
  variables: Record<string, unknown> | undefined,
  listFields: ReadonlySet<string>,
  maxPageSize: number,
): number {
  const first = field.arguments?.find((a) => a.name.value === 'first');
  if (first !== undefined) {
    if (first.value.kind === Kind.VARIABLE) {
      // Apollo validates before it knows the variables: count a variable page size as the largest page.
      const value = variables?.[first.value.name.value];
      return typeof value === 'number' && value > 0 ? Math.min(value, maxPageSize) : maxPageSize;
    }
    const value = literal(first.value);
    return typeof value === 'number' && value > 0 ? Math.min(value, maxPageSize) : PAGED_DEFAULT;
  }
  // A connection's `edges` are as many as its `first`, already counted on the connection field.
  return listFields.has(field.name.value) && field.name.value !== 'edges' ? UNPAGED_LIST : 1;
}

function literal(node: ValueNode): unknown {
  return node.kind === Kind.INT ? Number(node.value) : undefined;
}

/** Names of object fields whose type is a list of objects (their selections repeat per element). */
export function listFieldNames(schema: GraphQLSchema): Set<string> {
  const names = new Set<string>();
  for (const type of Object.values(schema.getTypeMap())) {
    if (type.name.startsWith('__') || !isObjectType(type)) continue;
    for (const field of Object.values(type.getFields())) {
      if (isListType(getNullableType(field.type)) && isObjectType(getNamedType(field.type))) names.add(field.name);
    }
  }
  return names;
}

type ComplexityLimits = Pick<Limits, 'maxQueryDepth' | 'maxQueryCost' | 'maxAliases' | 'maxPageSize'>;

/**
 * The limits an operation exceeds, as errors: its shape (depth, aliases), its cost (which needs the variables), or
 * both.
 */
function complexityErrors(
  operation: OperationDefinitionNode,
  fragments: Map<string, FragmentDefinitionNode>,
  limits: ComplexityLimits,
  listFields: ReadonlySet<string>,
  variables: Record<string, unknown> | undefined,
  checks: { shape: boolean; cost: boolean },
): GraphQLError[] {
  const walk = measure(operation, fragments, variables, listFields, limits.maxPageSize);
  const errors: GraphQLError[] = [];
  if (checks.shape && walk.depth > limits.maxQueryDepth) {
    errors.push(tooComplex(`the operation is ${walk.depth} levels deep, more than the limit of ${limits.maxQueryDepth}`));
  }
  if (checks.shape && walk.aliases > limits.maxAliases) {
    errors.push(tooComplex(`the operation has ${walk.aliases} aliases, more than the limit of ${limits.maxAliases}`));
  }
  if (checks.cost && walk.cost > limits.maxQueryCost) {
    errors.push(tooComplex(`the operation's estimated cost is ${walk.cost}, more than the limit of ${limits.maxQueryCost}`));
  }
  return errors;
}

function fragmentsOf(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  return fragments;
}

/** A rule that refuses operations over the depth, alias and (unless `cost` is false) cost limits. */
export function complexityRule(
  limits: ComplexityLimits,
  listFields: ReadonlySet<string>,
  variables?: Record<string, unknown>,
  cost = true,
): ValidationRule {
  return (context: ValidationContext): ASTVisitor => {
    const fragments = fragmentsOf(context.getDocument());
    return {
      OperationDefinition(operation) {
        for (const error of complexityErrors(operation, fragments, limits, listFields, variables, { shape: true, cost })) {
          context.reportError(error);
        }
      },
    };
  };
}

/**
 * Full introspection (`__schema`, what GraphiQL and code generators send) refused outside development, with the
 * API's code. `__type(name:)` and `__typename` stay: they reveal one type at a time, of a schema that is published
 * anyway (schema.graphql), and the GraphQL-over-HTTP audit probes with `__type`.
 */
const noIntrospection: ValidationRule = (context) => ({
  Field(node) {
    if (node.name.value === '__schema') {
      context.reportError(tooComplex('introspection (__schema) is turned off outside development'));
    }
  },
});

export interface OperationRules {
  /** Rules for Apollo's `validationRules`, which run before the variables are known: all but the cost. */
  apollo: ValidationRule[];
  /**
   * The cost limit of the operation Apollo resolved, with the request's variables (a page size given as
   * `first: $n` counts as n), for a plugin's didResolveOperation. Returns the error, if any.
   */
  costError(document: DocumentNode, operation: OperationDefinitionNode, variables?: Record<string, unknown>): GraphQLError | undefined;
  /** Full validation for a WebSocket subscribe message, standard rules included; returns the errors. */
  validate(schema: GraphQLSchema, document: DocumentNode, variables?: Record<string, unknown>): readonly GraphQLError[];
}

export function operationRules(schema: GraphQLSchema, limits: Limits, introspection: boolean): OperationRules {
  const listFields = listFieldNames(schema);
  const extra = (variables: Record<string, unknown> | undefined, cost: boolean): ValidationRule[] => [
    complexityRule(limits, listFields, variables, cost),
    ...(introspection ? [] : [noIntrospection]),
  ];
  return {
    apollo: extra(undefined, false),
    costError: (document, operation, variables) =>
      complexityErrors(operation, fragmentsOf(document), limits, listFields, variables, { shape: false, cost: true })[0],
    validate: (s, document, variables) => validate(s, document, [...specifiedRules, ...extra(variables, true)]),
  };
}

/**
 * Token buckets keyed by user: `ratePerMinute` tokens a minute up to `burst`. `take` answers whether a request
 * may go, and how long to wait otherwise. Idle buckets are dropped, so the map stays small.
 */
export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #perMs: number;

  constructor(
    ratePerMinute: number,
    readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#perMs = ratePerMinute / 60_000;
  }

  /** Takes one token for `key`; returns 0 when allowed, else the milliseconds until a token is free. */
  take(key: string): number {
    const now = this.now();
    const bucket = this.#buckets.get(key) ?? { tokens: this.burst, at: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + (now - bucket.at) * this.#perMs);
    bucket.at = now;
    if (this.#buckets.size > 10_000) this.#sweep(now);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      this.#buckets.set(key, bucket);
      return 0;
    }
    this.#buckets.set(key, bucket);
    return Math.ceil((1 - bucket.tokens) / this.#perMs);
  }

  #sweep(now: number): void {
    for (const [key, bucket] of this.#buckets) {
      if (bucket.tokens + (now - bucket.at) * this.#perMs >= this.burst) this.#buckets.delete(key);
    }
  }
}
