/**
 * A real restart on the embedded database: the server opens PGlite in its data folder (as `npm start` does),
 * answers, stops (closing the database), and a new server on the same folder has the history and the images. While
 * it runs, another server or `dialect keys` refuses to open the folder.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startServer } from '../../src/server/app.ts';
import { loadConfig } from '../../src/server/config.ts';
import { createLogger } from '../../src/server/logging.ts';
import { gql, LogSink, TINY_BUNDLE, tinyModel } from './helpers.ts';

const BIN = fileURLToPath(new URL('../../bin/dialect.js', import.meta.url));
const MAIN = fileURLToPath(new URL('../../src/server/main.ts', import.meta.url));

test('history and images survive a restart on the PGlite data folder', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'dialect-restart-'));
  const config = loadConfig({ PORT: '0', DIALECT_MODEL: TINY_BUNDLE, DIALECT_DATA_DIR: dataDir, DIALECT_URL_SECRET: 'a'.repeat(40) });
  const options = async () => ({ model: await tinyModel(), logger: createLogger('info', new LogSink()) });
  try {
    const first = await startServer(config, await options());
    const made = await gql(first.url, 'mutation { generate(input: { prompt: "kept across restarts", seed: 4 }) { turn { id conversation { id } image { id url tokens } } } }');
    const turn = made.body.data.generate.turn;
    const png = Buffer.from(await (await fetch(first.url + turn.image.url)).arrayBuffer());

    // While it runs, nothing else opens its PGlite folder: neither another server nor `dialect keys`.
    const env = { ...process.env, DIALECT_DATA_DIR: dataDir, DIALECT_MODEL: TINY_BUNDLE, PORT: '0', DATABASE_URL: '' };
    const keys = spawnSync(process.execPath, [BIN, 'keys', 'list'], { env, encoding: 'utf8' });
    assert.equal(keys.status, 2, keys.stderr);
    assert.match(keys.stderr, new RegExp(`the server at ${first.url} \\(pid ${process.pid}\\) has the embedded database`));
    const twin = spawnSync(process.execPath, ['--import', 'tsx', MAIN], { env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(twin.status, 2, twin.stderr);
    assert.match(twin.stderr, /PGlite is one process's database/);
    await first.stop();

    const second = await startServer(config, await options());
    try {
      const again = await gql(second.url, 'query($id: ID!) { conversation(id: $id) { title turns { id image { id tokens url } } } }', { id: turn.conversation.id });
      const conversation = again.body.data.conversation;
      assert.equal(conversation.title, 'kept across restarts');
      assert.equal(conversation.turns[0].id, turn.id);
      assert.deepEqual(conversation.turns[0].image.tokens, turn.image.tokens);
      // With DIALECT_URL_SECRET set, a URL handed out before the restart still works after it.
      const response = await fetch(second.url + turn.image.url);
      assert.equal(response.status, 200);
      assert.ok(Buffer.from(await response.arrayBuffer()).equals(png));
    } finally {
      await second.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
