import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GraphQLError } from 'graphql';
import { DbError } from '../../src/db/errors.ts';
import { InferenceError, PromptTooLongError, QueueFullError } from '../../src/model/index.ts';
import { ApiError, normaliseError, toUserError, UserFailure } from '../../src/server/errors.ts';

test('unexpected errors are hidden behind INTERNAL_SERVER_ERROR with an id that the log has', () => {
  const reported: [string, unknown][] = [];
  const secret = new Error('password=hunter2 at /srv/dialect/src/db.ts:12');
  const wrapped = new GraphQLError(secret.message, { originalError: secret, path: ['me'] });
  const out = normaliseError(wrapped.toJSON(), wrapped, (id, error) => reported.push([id, error]));
  assert.equal(out.message, 'internal server error');
  assert.equal(out.extensions?.code, 'INTERNAL_SERVER_ERROR');
  assert.ok(!JSON.stringify(out).includes('hunter2'));
  assert.equal(reported[0]?.[0], out.extensions?.errorId);
  assert.equal(reported[0]?.[1], secret);
});

test('errors raised on purpose keep their code and message; an unreachable database is SERVICE_UNAVAILABLE', () => {
  const api = new ApiError('UNAUTHENTICATED', 'an API key is required');
  assert.deepEqual(normaliseError(api.toJSON(), api, () => {}), { message: 'an API key is required', extensions: { code: 'UNAUTHENTICATED' } });
  const db = new DbError('DATABASE_UNAVAILABLE', 'connect ECONNREFUSED 10.0.0.5:5432');
  const wrapped = new GraphQLError(db.message, { originalError: db });
  const out = normaliseError(wrapped.toJSON(), wrapped, () => {});
  assert.equal(out.extensions?.code, 'SERVICE_UNAVAILABLE');
  assert.ok(!out.message.includes('10.0.0.5'));
});

test('the normaliser never throws', () => {
  const hostile = { get extensions(): never { throw new Error('boom'); }, message: 'x' };
  const out = normaliseError(hostile as never, undefined, () => {
    throw new Error('report failed');
  });
  assert.equal(out.extensions?.code, 'INTERNAL_SERVER_ERROR');
});

test('expected failures map to UserErrors; faults do not', () => {
  assert.equal(toUserError(new QueueFullError('full'))?.code, 'QUEUE_FULL');
  assert.equal(toUserError(new PromptTooLongError('long', 10, 5), ['input', 'prompt'])?.field?.[1], 'prompt');
  assert.equal(toUserError(new InferenceError('ort'))?.code, 'MODEL_FAILED');
  assert.equal(toUserError(new DbError('NOT_FOUND', 'image not found'))?.code, 'NOT_FOUND');
  assert.equal(toUserError(new UserFailure('RATE_LIMITED', 'slow down'))?.message, 'slow down');
  assert.equal(toUserError(new Error('bug')), null);
  assert.equal(toUserError(new DbError('INTERNAL', 'x')), null);
});
