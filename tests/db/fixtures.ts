/** Builders shared by the database tests. */
import assert from 'node:assert/strict';
import { createUser, DbError, type Database, type DbErrorCode, type NewImage, type User } from '../../src/db/index.ts';

let users = 0;

export function makeUser(database: Database, name = 'person'): Promise<User> {
  users += 1;
  return createUser(database, { displayName: `${name} ${users}` });
}

export function tokensImage(overrides: Partial<NewImage> = {}): NewImage {
  return {
    origin: 'upload',
    tokens: Array.from({ length: 81 }, (_, index) => (index * 37) % 512),
    scale: 1,
    codebookSize: 512,
    width: 64,
    height: 64,
    modelName: 'tar-shapes',
    modelVersion: '0.1.0',
    ...overrides,
  };
}

export const RESULT = { modelName: 'tar-shapes', modelVersion: '0.1.0', timings: { total: 12.5, prefill: 3 } };

export async function rejectsWith(promise: Promise<unknown>, code: DbErrorCode, field?: string): Promise<DbError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof DbError, `expected a DbError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (field !== undefined) assert.equal(error.field, field);
    return error;
  }
  assert.fail(`expected ${code}, but it resolved`);
}
