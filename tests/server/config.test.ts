import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, DEFAULT_LIMITS, isLoopback, loadConfig } from '../../src/server/config.ts';

test('defaults: loopback, port 4000, the shipped model, PGlite, production', () => {
  const config = loadConfig({});
  assert.equal(config.host, '127.0.0.1');
  assert.equal(config.port, 4000);
  assert.match(config.bundleDir, /models\/tar-shapes\/?$/);
  assert.equal(config.databaseUrl, undefined);
  assert.equal(config.introspection, false);
  assert.deepEqual(config.limits, DEFAULT_LIMITS);
  assert.equal(config.modelThread, 'auto');
  assert.equal(config.pgliteWorker, false);
});

test('DIALECT_MODEL_THREAD: 1, 0, auto, or a clear problem', () => {
  assert.equal(loadConfig({ DIALECT_MODEL_THREAD: '1' }).modelThread, true);
  assert.equal(loadConfig({ DIALECT_MODEL_THREAD: 'false' }).modelThread, false);
  assert.equal(loadConfig({ DIALECT_MODEL_THREAD: 'auto' }).modelThread, 'auto');
  assert.throws(() => loadConfig({ DIALECT_MODEL_THREAD: 'yes' }), /DIALECT_MODEL_THREAD must be 1, 0 or auto, not "yes"/);
});

test('environment variables override, and every problem is reported at once', () => {
  const config = loadConfig({ HOST: '0.0.0.0', PORT: '8080', DIALECT_MAX_QUEUE: '5', NODE_ENV: 'development', DATABASE_URL: 'postgres://u@h/db' });
  assert.equal(config.port, 8080);
  assert.equal(config.limits.maxQueue, 5);
  assert.equal(config.introspection, true);
  assert.equal(config.databaseUrl, 'postgres://u@h/db');
  try {
    loadConfig({ PORT: 'eighty', DIALECT_MAX_QUEUE: '0', DATABASE_URL: 'mysql://x', DIALECT_URL_SECRET: 'short', LOG_LEVEL: 'loud', DIALECT_ALLOWED_ORIGINS: 'example.com' });
    assert.fail('expected a ConfigError');
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.problems.length, 6, error.message);
    assert.match(error.message, /PORT must be an integer, not "eighty"/);
    assert.match(error.message, /DIALECT_MAX_QUEUE must be between 1 and 100000, not 0/);
  }
});

test('loopback addresses', () => {
  for (const host of ['127.0.0.1', 'localhost', '::1', '127.1.2.3']) assert.ok(isLoopback(host), host);
  for (const host of ['0.0.0.0', '::', '192.168.1.2', 'example.com']) assert.ok(!isLoopback(host), host);
});
