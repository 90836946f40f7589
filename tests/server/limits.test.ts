import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getOperationAST, parse, validate } from 'graphql';
import { buildSchema } from '../../src/server/app.ts';
import { DEFAULT_LIMITS } from '../../src/server/config.ts';
import { operationRules, RateLimiter } from '../../src/server/limits.ts';

const schema = buildSchema();
const codes = (query: string, variables?: Record<string, unknown>, introspection = false, limits = DEFAULT_LIMITS) =>
  operationRules(schema, limits, introspection)
    .validate(schema, parse(query), variables)
    .map((e) => `${String(e.extensions.code)}: ${e.message}`);

test('depth counts nested fields through fragments', () => {
  const limits = { ...DEFAULT_LIMITS, maxQueryDepth: 4 };
  assert.deepEqual(codes('{ turn(id: "x") { parent { parent { id } } } }', undefined, false, limits), []);
  const viaFragment = 'query { turn(id: "x") { ...P } } fragment P on Turn { parent { parent { parent { parent { id } } } } }';
  assert.match(codes(viaFragment, undefined, false, limits)[0] ?? '', /^QUERY_TOO_COMPLEX: the operation is 5 levels deep/);
});

test('cost multiplies by page sizes, from literals and variables (a variable counts in full when unknown)', () => {
  const limits = { ...DEFAULT_LIMITS, maxQueryCost: 1000 };
  const query = 'query($n: Int) { conversations(first: $n) { edges { node { turns { id prompt } } } } }';
  assert.deepEqual(codes(query, { n: 2 }, false, limits), []);
  assert.match(codes(query, { n: 100 }, false, limits)[0] ?? '', /estimated cost is \d+/);
  assert.match(codes(query, undefined, false, limits)[0] ?? '', /estimated cost/);
});

test('aliases and introspection', () => {
  const aliases = Array.from({ length: 21 }, (_, i) => `a${i}: me { id }`).join(' ');
  assert.match(codes(`{ ${aliases} }`)[0] ?? '', /21 aliases/);
  assert.match(codes('{ __schema { queryType { name } } }')[0] ?? '', /^QUERY_TOO_COMPLEX: introspection/);
  assert.deepEqual(codes('{ __type(name: "Turn") { name } }'), [], 'one type at a time stays allowed');
  assert.deepEqual(codes('{ __schema { queryType { name } } }', undefined, true), []);
  assert.deepEqual(codes('{ __typename me { __typename } }'), []);
});

test('over HTTP the cost is checked once the variables are known (costError), the rest in validation', () => {
  const limits = { ...DEFAULT_LIMITS, maxQueryCost: 1000 };
  const rules = operationRules(schema, limits, false);
  const query = parse('query Q($n: Int) { conversations(first: $n) { edges { node { turns { id prompt } } } } }');
  const operation = getOperationAST(query, 'Q');
  assert.ok(operation);
  assert.deepEqual(validate(schema, query, rules.apollo), [], 'validation alone does not guess the page size');
  assert.equal(rules.costError(query, operation, { n: 2 }), undefined);
  assert.match(rules.costError(query, operation, { n: 100 })?.message ?? '', /estimated cost is \d+, more than the limit of 1000/);
  assert.equal(rules.costError(query, operation, { n: 100 })?.extensions.code, 'QUERY_TOO_COMPLEX');
  assert.match(rules.costError(query, operation, {})?.message ?? '', /estimated cost/, 'no page size: the largest page');
});

test('standard validation runs too (for WebSocket operations)', () => {
  assert.match(codes('{ me { password } }')[0] ?? '', /Cannot query field "password"/);
});

test('the token bucket allows a burst, then the rate, per key', () => {
  let now = 0;
  const rate = new RateLimiter(60, 3, () => now);
  assert.deepEqual([rate.take('a'), rate.take('a'), rate.take('a')], [0, 0, 0]);
  const wait = rate.take('a');
  assert.ok(wait > 0 && wait <= 1000, String(wait));
  assert.equal(rate.take('b'), 0, 'another key has its own bucket');
  now += 1000;
  assert.equal(rate.take('a'), 0);
  assert.ok(rate.take('a') > 0);
});
