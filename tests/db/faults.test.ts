/**
 * Faults of the server: unreachable, connections killed mid-run (what a restart does to clients), a transaction
 * cut in the middle. PostgreSQL only: PGlite runs in the process and cannot go away underneath it.
 */
import assert from 'node:assert/strict';
import { createServer, Socket } from 'node:net';
import { describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import {
  createConversation,
  deleteConversation,
  getConversation,
  listConversations,
  openDatabase,
  startDatabase,
  addTurn,
  claimNextJob,
  getJob,
  DbError,
} from '../../src/db/index.ts';
import { DRIVERS, openTestDatabase } from './harness.ts';
import { makeUser, rejectsWith, RESULT, tokensImage } from './fixtures.ts';

/** A port on loopback where nothing listens. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('pg faults', { skip: !DRIVERS.includes('pg') && 'pg driver not selected' }, () => {
  test('an unreachable server is DATABASE_UNAVAILABLE at open, quickly', async () => {
    const port = await closedPort();
    const started = Date.now();
    await rejectsWith(openDatabase({ url: `postgres://postgres@127.0.0.1:${port}/test`, connectTimeoutMs: 1000 }), 'DATABASE_UNAVAILABLE');
    assert.ok(Date.now() - started < 5000);
  });

  test('queries fail typed while the server is away, and work again when it is back', async () => {
    const port = await closedPort();
    const handle = await openTestDatabase('pg');
    // A TCP relay in front of the test database stands for the server: closing it is the outage.
    const target = new URL(handle.url!);
    const sockets = new Set<Socket>();
    let relay = startRelay(port, Number(target.port || 5432), sockets);
    await relay.ready;
    const viaRelay = new URL(handle.url!);
    viaRelay.port = String(port);
    const database = await openDatabase({ url: viaRelay.toString(), migrate: false, connectTimeoutMs: 1000, onConnectionError: () => {} });
    try {
      const user = await makeUser(database);
      await createConversation(database, user.id, { title: 'before' });
      const closing = relay.close();
      for (const socket of sockets) socket.destroy();
      await closing;
      await rejectsWith(listConversations(database, user.id), 'DATABASE_UNAVAILABLE');
      await rejectsWith(createConversation(database, user.id, { title: 'during' }), 'DATABASE_UNAVAILABLE');
      await rejectsWith(database.ping(), 'DATABASE_UNAVAILABLE');
      relay = startRelay(port, Number(target.port || 5432), sockets);
      await relay.ready;
      const page = await listConversations(database, user.id);
      assert.deepEqual(page.items.map((item) => item.title), ['before'], 'nothing of the outage was written');
    } finally {
      await database.close();
      const closing = relay.close();
      for (const socket of sockets) socket.destroy();
      await closing;
      await handle.dispose();
    }
  });

  test('killed connections (a restart) fail the queries they carried, then the pool reconnects', async () => {
    const handle = await openTestDatabase('pg');
    const { database } = handle;
    const admin = new pg.Client({ connectionString: handle.url });
    await admin.connect();
    try {
      const user = await makeUser(database);
      const conversation = await createConversation(database, user.id, { title: 'survives' });
      // A slow query in flight when every backend of the database is terminated.
      const inFlight = database.db.execute(sql`select pg_sleep(5)`).then(
        () => 'finished',
        (error: unknown) => error,
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()');
      assert.notEqual(await inFlight, 'finished');
      for (let index = 0; index < 3; index += 1) {
        assert.equal((await getConversation(database, user.id, conversation.id)).conversation.title, 'survives');
      }
    } finally {
      await admin.end();
      await handle.dispose();
    }
  });

  test('a transaction cut in the middle leaves nothing half-written', async () => {
    const handle = await openTestDatabase('pg');
    const { database } = handle;
    const admin = new pg.Client({ connectionString: handle.url });
    await admin.connect();
    try {
      const user = await makeUser(database);
      const conversation = await createConversation(database, user.id, { title: 'whole' });
      const { turn } = await addTurn(database, user.id, {
        conversationId: conversation.id,
        task: 'edit',
        prompt: 'p',
        inputImages: [{ image: tokensImage() }],
        result: RESULT,
      });
      // Another session holds the turn's row, so deleteConversation blocks after deleting the conversation row.
      await admin.query('begin');
      await admin.query('select 1 from turns where id = $1 for update', [turn.id]);
      // Settled at once into a value, so that its rejection is never "unhandled" while the test waits.
      const deleting = deleteConversation(database, user.id, conversation.id).then(
        () => 'deleted',
        (error: unknown) => error,
      );
      let victim: number | undefined;
      for (let tries = 0; tries < 50 && victim === undefined; tries += 1) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        const waiting = await admin.query(
          "select pid from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()",
        );
        victim = waiting.rows[0]?.pid as number | undefined;
      }
      assert.ok(victim !== undefined, 'the delete is waiting on the lock');
      await admin.query('select pg_terminate_backend($1)', [victim]);
      const outcome = await deleting;
      assert.ok(outcome instanceof DbError && outcome.code === 'DATABASE_UNAVAILABLE', String(outcome));
      await admin.query('rollback');
      const after = await getConversation(database, user.id, conversation.id);
      assert.equal(after.turns.length, 1);
      assert.equal(after.turns[0]!.inputImages.length, 1);
      await deleteConversation(database, user.id, conversation.id);
      await rejectsWith(getConversation(database, user.id, conversation.id), 'NOT_FOUND');
    } finally {
      await admin.end();
      await handle.dispose();
    }
  });

  test('start-up settles jobs a killed process left running', async () => {
    const handle = await openTestDatabase('pg');
    try {
      const user = await makeUser(handle.database);
      const conversation = await createConversation(handle.database, user.id, { title: 'crash' });
      const { jobId } = await addTurn(handle.database, user.id, { conversationId: conversation.id, task: 'generate', prompt: 'x', maxAttempts: 1 });
      await claimNextJob(handle.database, 'about-to-crash');
      const { database, recovered } = await startDatabase({ url: handle.url!, onConnectionError: () => {} });
      try {
        assert.deepEqual(recovered, { requeued: [], failed: [jobId] });
        const job = await getJob(database, user.id, jobId!);
        assert.equal(job.status, 'failed');
        assert.equal(job.errorCode, 'INTERRUPTED');
      } finally {
        await database.close();
      }
    } finally {
      await handle.dispose();
    }
  });
});

function startRelay(listenPort: number, targetPort: number, sockets: Set<Socket>) {
  const server = createServer((client) => {
    const upstream = new Socket();
    upstream.connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    client.pipe(upstream).pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
  });
  const ready = new Promise<void>((resolve) => server.listen(listenPort, '127.0.0.1', resolve));
  return {
    ready,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
