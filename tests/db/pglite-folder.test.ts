/**
 * The default set-up (`npm start` with no DATABASE_URL): PGlite in a folder of DIALECT_DATA_DIR, kept across
 * restarts, and the CLI's export and import against it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PGlite } from '@electric-sql/pglite';
import { main } from '../../src/cli/main.ts';
import {
  addTurn,
  claimNextJob,
  createConversation,
  getConversation,
  getJob,
  listConversations,
  openDatabase,
  startDatabase,
  type DialectExport,
} from '../../src/db/index.ts';
import { DRIVERS, pgliteTemplate } from './harness.ts';
import { makeUser, RESULT, tokensImage } from './fixtures.ts';

const skip = !DRIVERS.includes('pglite') && 'pglite driver not selected';
let dataDir = '';
const saved = { url: process.env.DATABASE_URL, dir: process.env.DIALECT_DATA_DIR };

before(async () => {
  if (skip) return;
  dataDir = mkdtempSync(join(tmpdir(), 'dialect-data-'));
  // Seed the folder from the migrated template, as a first start would leave it (without the seconds of initdb).
  const seeded = await PGlite.create({ dataDir: join(dataDir, 'pglite'), loadDataDir: await pgliteTemplate() });
  await seeded.close();
  delete process.env.DATABASE_URL;
  process.env.DIALECT_DATA_DIR = dataDir;
});

after(() => {
  if (saved.url === undefined) delete process.env.DATABASE_URL;
  else process.env.DATABASE_URL = saved.url;
  if (saved.dir === undefined) delete process.env.DIALECT_DATA_DIR;
  else process.env.DIALECT_DATA_DIR = saved.dir;
  if (dataDir !== '') rmSync(dataDir, { recursive: true, force: true });
});

test('history in the data folder survives a restart; a job the old process ran is settled', { skip }, async () => {
  const first = await openDatabase();
  assert.equal(first.driver, 'pglite');
  assert.equal(first.location, join(dataDir, 'pglite'));
  const user = await makeUser(first);
  const conversation = await createConversation(first, user.id, { title: 'kept' });
  await addTurn(first, user.id, { conversationId: conversation.id, task: 'edit', prompt: 'x', inputImages: [{ image: tokensImage() }], result: RESULT });
  const { jobId } = await addTurn(first, user.id, { conversationId: conversation.id, task: 'generate', prompt: 'running at the crash' });
  await claimNextJob(first, 'old-process');
  await first.close();

  const { database, recovered } = await startDatabase();
  try {
    assert.deepEqual(recovered.requeued, [jobId]);
    assert.equal((await getJob(database, user.id, jobId!)).status, 'queued');
    assert.deepEqual((await listConversations(database, user.id)).items.map((item) => item.title), ['kept']);
    assert.equal((await getConversation(database, user.id, conversation.id)).turns[0]!.inputImages.length, 1);
  } finally {
    await database.close();
  }

  const file = join(dataDir, 'export.json');
  assert.equal(await main(['migrate']), 0);
  assert.equal(await main(['export', '--user', user.id, '--out', file, '--tokens-only']), 0);
  const document = JSON.parse(readFileSync(file, 'utf8')) as DialectExport;
  assert.equal(document.conversations[0]!.turns.length, 2);
  assert.equal(await main(['import', file, '--new-ids']), 0);
  const reopened = await openDatabase();
  try {
    assert.equal((await listConversations(reopened, user.id)).items.length, 2, 'the copy sits beside the original');
  } finally {
    await reopened.close();
  }
});
