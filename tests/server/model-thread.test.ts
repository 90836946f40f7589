/**
 * The server with its model in a worker thread (DIALECT_MODEL_THREAD=1, the default for large bundles): it loads
 * the model itself, answers understand, generate and edit over HTTP with the same results as the in-thread model,
 * stops a cancelled job, and ends the thread when it stops. `auto` keeps a small CPU bundle in the server's thread.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer, type DialectServer } from '../../src/server/app.ts';
import { loadConfig } from '../../src/server/config.ts';
import { createLogger } from '../../src/server/logging.ts';
import { openTestDatabase, type TestDatabase } from '../db/harness.ts';
import { gql, LogSink, pngBase64, TINY_BUNDLE, tinyModel, until } from './helpers.ts';

const GENERATE = 'mutation($i: GenerateInput!) { generate(input: $i) { turn { id status image { id tokens } } errors { code } } }';
const UNDERSTAND = 'mutation($i: UnderstandInput!) { understand(input: $i) { turn { status text inputImage { tokens } } errors { code } } }';
const EDIT = 'mutation($i: EditInput!) { edit(input: $i) { turn { status image { tokens } } errors { code } } }';

let databases: TestDatabase[] = [];
let threaded: DialectServer & { logs: LogSink };
let inThread: DialectServer;

async function serve(env: Record<string, string>, injected: boolean) {
  const test = await openTestDatabase('pglite');
  databases.push(test);
  const logs = new LogSink();
  const config = loadConfig({ PORT: '0', DIALECT_MODEL: TINY_BUNDLE, DIALECT_MAX_BATCH: '4', ...env });
  const server = await startServer(config, {
    database: test.database,
    logger: createLogger('info', logs),
    ...(injected ? { model: await tinyModel() } : {}),
  });
  return Object.assign(server, { logs });
}

const loadedLine = (logs: LogSink) => logs.lines.find((line) => line.msg === 'model loaded');

before(async () => {
  threaded = await serve({ DIALECT_MODEL_THREAD: '1' }, false);
  inThread = await serve({}, true);
});

after(async () => {
  await threaded?.stop();
  await inThread?.stop();
  for (const test of databases) await test.dispose();
});

test('the server loads its model in a thread and answers each mutation as the in-thread model does', async () => {
  assert.equal(loadedLine(threaded.logs)?.modelThread, true);
  const image = await pngBase64(32, 32, { r: 20, g: 40, b: 220 });
  const answers = [];
  for (const url of [threaded.url, inThread.url]) {
    const made = await gql(url, GENERATE, { i: { prompt: 'a red circle', seed: 4, scale: 3 } });
    assert.deepEqual(made.body.data?.generate.errors, [], JSON.stringify(made.body));
    const generated = made.body.data.generate.turn;
    assert.equal(generated.status, 'SUCCEEDED');
    const asked = await gql(url, UNDERSTAND, { i: { prompt: 'What color is the square?', seed: 1, image: { base64: image } } });
    assert.equal(asked.body.data.understand.turn.status, 'SUCCEEDED', JSON.stringify(asked.body));
    const edited = await gql(url, EDIT, { i: { prompt: 'make the circle blue', seed: 2, scale: 3, image: { id: generated.image.id } } });
    assert.equal(edited.body.data.edit.turn.status, 'SUCCEEDED', JSON.stringify(edited.body));
    answers.push({
      generated: generated.image.tokens,
      text: asked.body.data.understand.turn.text,
      encoded: asked.body.data.understand.turn.inputImage.tokens,
      edited: edited.body.data.edit.turn.image.tokens,
    });
  }
  assert.deepEqual(answers[0], answers[1]);
});

test('cancelling a job of the threaded model stops it in the thread', async () => {
  const made = await gql(threaded.url, 'mutation { generate(input: { prompt: "a big triangle", scale: 1, wait: false }) { turn { id } job { id } errors { code } } }');
  const jobId = made.body.data.generate.job.id;
  await gql(threaded.url, 'mutation($id: ID!) { cancelJob(id: $id) { errors { code } } }', { id: jobId });
  let status = '';
  await until(async () => {
    const job = await gql(threaded.url, 'query($id: ID!) { job(id: $id) { status } }', { id: jobId });
    status = job.body.data?.job?.status ?? '';
    return ['CANCELLED', 'SUCCEEDED'].includes(status);
  });
  // The tiny model may finish before the cancel lands; either way the thread keeps serving.
  assert.ok(['CANCELLED', 'SUCCEEDED'].includes(status), status);
  const after = await gql(threaded.url, GENERATE, { i: { prompt: 'a red circle', seed: 5 } });
  assert.equal(after.body.data.generate.turn.status, 'SUCCEEDED');
});

test('auto keeps a small CPU bundle in the server thread', async () => {
  const server = await serve({ DIALECT_MODEL_THREAD: 'auto' }, false);
  try {
    assert.equal(loadedLine(server.logs)?.modelThread, false);
  } finally {
    await server.stop();
  }
});
