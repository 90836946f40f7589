/**
 * The GraphQL-over-HTTP specification's own audit (graphql-http's serverAudits) against the server over real HTTP,
 * in development and in the default production configuration (where `__schema` introspection is refused; the
 * audits probe with `__typename` and `__type(name:)`, which stay allowed). Every MUST passes in both.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { serverAudits } from 'graphql-http';
import type { DialectServer } from '../../src/server/app.ts';
import { openTestDatabase, type TestDatabase } from '../db/harness.ts';
import { startTestServer } from './helpers.ts';

let handle: TestDatabase;
before(async () => {
  handle = await openTestDatabase('pglite');
});
after(async () => {
  await handle.dispose();
});

async function audit(server: DialectServer, t: { diagnostic(message: string): void }) {
  const audits = serverAudits({ url: () => `${server.url}/graphql`, fetchFn: fetch });
  const failures: string[] = [];
  const warnings: string[] = [];
  for (const entry of audits) {
    const result = await entry.fn();
    if (result.status === 'error') failures.push(entry.name);
    if (result.status === 'warn') warnings.push(`${entry.name}: ${result.reason}`);
  }
  t.diagnostic(`${audits.length} audits, ${failures.length} errors, ${warnings.length} warnings`);
  for (const warning of warnings) t.diagnostic(`warn ${warning}`);
  return failures;
}

describe('graphql-http server audits', () => {
  test('all pass with introspection allowed', async (t) => {
    const server = await startTestServer(handle.database, { LOG_LEVEL: 'warn', NODE_ENV: 'development' });
    try {
      assert.deepEqual(await audit(server, t), []);
    } finally {
      await server.stop();
    }
  });

  test('all pass in the default production configuration', async (t) => {
    const server = await startTestServer(handle.database, { LOG_LEVEL: 'warn' });
    try {
      assert.deepEqual(await audit(server, t), []);
    } finally {
      await server.stop();
    }
  });
});
