/**
 * The server on its embedded database can run PGlite in a worker thread (DIALECT_PGLITE_WORKER=1; default off): in
 * process through startServer, and as `npm start` runs it (tsx src/server/main.ts), where the worker must load its
 * TypeScript the same way. Each does a generate and reads the history back over HTTP.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { PgliteWorkerClient } from '../../src/db/pglite-remote.ts';
import { startServer } from '../../src/server/app.ts';
import { loadConfig } from '../../src/server/config.ts';
import { createLogger } from '../../src/server/logging.ts';
import { pgliteTemplate } from '../db/harness.ts';
import { gql, LogSink, TINY_BUNDLE, tinyModel } from './helpers.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const GENERATE = 'mutation { generate(input: { prompt: "a red circle", seed: 4 }) { turn { id status conversation { id } image { tokens } } errors { code } } }';
const HISTORY = 'query($id: ID!) { me { id } conversation(id: $id) { title turns { id task status image { tokens } } } conversations(first: 5) { edges { node { id } } } }';

/** A data folder seeded from the migrated template, as a first start leaves it (without initdb's seconds). */
async function seededDataDir(): Promise<string> {
  const dataDir = mkdtempSync(join(tmpdir(), 'dialect-server-worker-'));
  const seeded = await PGlite.create({ dataDir: join(dataDir, 'pglite'), loadDataDir: await pgliteTemplate() });
  await seeded.close();
  return dataDir;
}

/** Generates, reads it back; `earlier` are the conversations already in the folder, newest first. Returns them all. */
async function generateAndReadBack(url: string, earlier: string[] = []): Promise<string[]> {
  const made = await gql(url, GENERATE);
  assert.deepEqual(made.body.data?.generate.errors, [], JSON.stringify(made.body));
  const turn = made.body.data.generate.turn;
  assert.equal(turn.status, 'SUCCEEDED');
  const history = await gql(url, HISTORY, { id: turn.conversation.id });
  assert.equal(history.body.errors, undefined, JSON.stringify(history.body.errors));
  const data = history.body.data;
  assert.match(data.me.id, /^[0-9a-f-]{36}$/);
  assert.equal(data.conversation.title, 'a red circle');
  assert.deepEqual(
    data.conversation.turns.map((t: { id: string; task: string; status: string }) => [t.id, t.task, t.status]),
    [[turn.id, 'GENERATE', 'SUCCEEDED']],
  );
  assert.deepEqual(data.conversation.turns[0].image.tokens, turn.image.tokens);
  const all = [turn.conversation.id as string, ...earlier];
  assert.deepEqual(data.conversations.edges.map((edge: { node: { id: string } }) => edge.node.id), all);
  return all;
}

test('the server opens its PGlite data folder in a worker thread with DIALECT_PGLITE_WORKER=1, and in-thread by default', async () => {
  const dataDir = await seededDataDir();
  let conversations: string[] = [];
  try {
    for (const [flag, kind] of [['1', PgliteWorkerClient], [undefined, PGlite]] as const) {
      const env = { PORT: '0', DIALECT_MODEL: TINY_BUNDLE, DIALECT_DATA_DIR: dataDir, ...(flag === undefined ? {} : { DIALECT_PGLITE_WORKER: flag }) };
      const config = loadConfig(env);
      const logs = new LogSink();
      const server = await startServer(config, { model: await tinyModel(), logger: createLogger('info', logs) });
      try {
        const client = (server.services.database.db as unknown as { $client: unknown }).$client;
        assert.ok(client instanceof kind, `DIALECT_PGLITE_WORKER=${flag ?? 'unset'}: ${kind.name}`);
        assert.equal(logs.lines.find((line) => line.msg === 'model loaded')?.pgliteWorker, flag === '1');
        // The second server (in-thread) finds the first one's (worker) history in the folder.
        conversations = await generateAndReadBack(server.url, conversations);
      } finally {
        await server.stop();
      }
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('npm start (tsx src/server/main.ts) runs with the worker: generate and history over HTTP, then a clean stop', async () => {
  const dataDir = await seededDataDir();
  const child = spawn(join(ROOT, 'node_modules/.bin/tsx'), ['src/server/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', DIALECT_MODEL: TINY_BUNDLE, DIALECT_DATA_DIR: dataDir, DATABASE_URL: '', DIALECT_PGLITE_WORKER: '1', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const lines: Record<string, unknown>[] = [];
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no 'server listening' within 120 s; stderr: ${stderr}`)), 120_000);
      exited.then((code) => reject(new Error(`the server exited (${code}): ${stderr}`)));
      createInterface({ input: child.stdout }).on('line', (text) => {
        const line = JSON.parse(text) as Record<string, unknown>;
        lines.push(line);
        if (line.msg === 'server listening') {
          clearTimeout(timer);
          resolve(String(line.url).replace(/\/graphql$/, ''));
        }
      });
    });
    assert.equal(lines.find((line) => line.msg === 'model loaded')?.pgliteWorker, true);
    await generateAndReadBack(url);
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    assert.ok(lines.some((line) => line.msg === 'stopped'));
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('DIALECT_PGLITE_WORKER takes 1 or 0', () => {
  assert.equal(loadConfig({}).pgliteWorker, false);
  assert.equal(loadConfig({ DIALECT_PGLITE_WORKER: '1' }).pgliteWorker, true);
  assert.equal(loadConfig({ DIALECT_PGLITE_WORKER: 'false' }).pgliteWorker, false);
  assert.throws(() => loadConfig({ DIALECT_PGLITE_WORKER: 'maybe' }), /DIALECT_PGLITE_WORKER must be 1 or 0, not "maybe"/);
});
