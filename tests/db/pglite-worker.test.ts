/**
 * PGlite in a worker thread (src/db/pglite-remote.ts), beyond the shared suite that runs on it as the
 * `pglite-worker` backend: the values and errors that cross the thread boundary come back as the in-thread driver
 * gives them, concurrent queries and transactions keep PGlite's isolation, and a worker that dies turns every
 * pending and later query into DATABASE_UNAVAILABLE instead of a hang.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { PGlite } from '@electric-sql/pglite';
import { eq, sql } from 'drizzle-orm';
import {
  createConversation,
  createUser,
  DbError,
  getUser,
  listConversations,
  newId,
  openDatabase,
  type Database,
} from '../../src/db/index.ts';
import { toDbError } from '../../src/db/errors.ts';
import { toWireError } from '../../src/db/pglite-protocol.ts';
import { PgliteWorkerClient } from '../../src/db/pglite-remote.ts';
import { conversations, users } from '../../src/db/schema/index.ts';
import { makeUser, rejectsWith } from './fixtures.ts';
import { BACKENDS, openTestDatabase, pgliteTemplate, type TestDatabase } from './harness.ts';

const skip = !BACKENDS.includes('pglite-worker') && 'pglite-worker backend not selected';

/** A worker thread as PgliteWorkerClient sees it (an EventEmitter that can be terminated), whose events the test emits. */
class FakeWorker extends EventEmitter {
  terminated = false;
  async terminate(): Promise<number> {
    this.terminated = true;
    return 1;
  }
}

/** Settles `promise`, failing the test if it takes longer than `ms` (a hang). */
async function within<T>(ms: number, promise: Promise<T>): Promise<PromiseSettledResult<T>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([Promise.allSettled([promise]).then(([settled]) => settled!), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** What drizzle's `execute` gives on PGlite: the driver's result. */
interface Results {
  rows: Record<string, unknown>[];
  fields: { name: string; dataTypeID: number }[];
}

/** The driver's client under drizzle. */
const clientOf = (database: Database): unknown => (database.db as unknown as { $client: unknown }).$client;

function assertUnavailable(settled: PromiseSettledResult<unknown>, what: string): void {
  assert.equal(settled.status, 'rejected', `${what} should fail`);
  const error = toDbError((settled as PromiseRejectedResult).reason);
  assert.equal(error.code, 'DATABASE_UNAVAILABLE', `${what}: ${error.message}`);
}

/** How a failure looks to the data layer and to a caller that reads the driver's fields. */
async function failure(database: Database, statement: ReturnType<typeof sql>) {
  try {
    await database.db.execute(statement);
  } catch (error) {
    const typed = toDbError(error);
    const inner = (error as { cause?: Record<string, unknown> }).cause ?? {};
    const fields = Object.fromEntries(
      ['code', 'severity', 'constraint', 'table', 'schema', 'column', 'routine', 'message'].map((key) => [key, inner[key]]),
    );
    // (`detail` quotes the failing row, whose default timestamps differ between the two databases.)
    fields.detail = typeof inner.detail === 'string' ? inner.detail.replace(/\d{4}-\d\d-\d\d [\d:.+]+/g, 'TIME') : inner.detail;
    return { code: typed.code, message: typed.message, field: typed.field, fields };
  }
  assert.fail('the statement should fail');
}

describe('PGlite in a worker thread', { skip, timeout: 120_000 }, () => {
  let inThread: TestDatabase;
  let worker: TestDatabase;
  before(async () => {
    inThread = await openTestDatabase('pglite');
    worker = await openTestDatabase('pglite-worker');
  });
  after(async () => {
    await worker?.dispose();
    await inThread?.dispose();
  });

  test('values come back as the in-thread driver gives them', async () => {
    // drizzle's execute passes its identity parsers for timestamps, dates, intervals and numeric[]: those stay text.
    const probe = sql`select 42::int4 as i, 9007199254740993::int8 as big, 1.5::numeric as num,
      '{1.5,2}'::numeric[] as nums, '2026-01-02 03:04:05.678+00'::timestamptz as at, '2026-01-02'::date as day,
      '1 day 2 hours'::interval as span, '{"a":[1,{"b":null}]}'::jsonb as doc, '\\x00ff10'::bytea as bytes,
      array['x','y']::text[] as words, true as yes, null::text as nothing, '01a22504-45cc-75ca-bcc2-38a01a5fc7a7'::uuid as id`;
    const here = (await inThread.database.db.execute(probe)) as unknown as Results;
    const there = (await worker.database.db.execute(probe)) as unknown as Results;
    assert.deepEqual(there.rows, here.rows);
    assert.deepEqual(there.fields, here.fields);
    assert.equal(typeof there.rows[0]!.at, 'string');
    assert.ok(there.rows[0]!.bytes instanceof Uint8Array);

    // And rows mapped by drizzle's column types (Date, Buffer-typed bytea, jsonb) through the data layer.
    const user = await makeUser(worker.database);
    const read = await getUser(worker.database, user.id);
    assert.deepEqual(read, user);
    assert.ok(read.createdAt instanceof Date);
    const [row] = await worker.database.db.select().from(users).where(eq(users.id, user.id));
    assert.equal(row!.createdAt.getTime(), user.createdAt.getTime());
  });

  test('errors keep their fields, so they map to the same typed errors', async () => {
    const discordId = String(200_000_000_000_000_000n + BigInt(Math.floor(Math.random() * 1e9)));
    await createUser(inThread.database, { displayName: 'holder', discordId });
    await createUser(worker.database, { displayName: 'holder', discordId });
    const statements = [
      // unique violation → CONFLICT, naming the constraint
      sql`insert into users (id, display_name, discord_id) values (${newId()}, 'x', ${discordId})`,
      // check constraint → FIELD_TOO_LONG with the constraint as field
      sql`insert into users (id, display_name) values (${newId()}, ${'n'.repeat(101)})`,
      // foreign key → NOT_FOUND
      sql`insert into conversations (id, user_id, title) values (${newId()}, ${newId()}, 't')`,
      // not null → INVALID_INPUT
      sql`insert into users (id, display_name) values (${newId()}, null)`,
      // syntax error → INTERNAL
      sql`selec 1`,
    ];
    const expected = ['CONFLICT', 'FIELD_TOO_LONG', 'NOT_FOUND', 'INVALID_INPUT', 'INTERNAL'];
    for (const [index, statement] of statements.entries()) {
      const here = await failure(inThread.database, statement);
      const there = await failure(worker.database, statement);
      assert.equal(there.code, expected[index]);
      assert.deepEqual(there, here);
    }
    const conflict = await failure(worker.database, statements[0]!);
    assert.equal(conflict.fields.constraint, 'users_discord_id_key');
    assert.equal(conflict.fields.code, '23505');
    assert.equal(conflict.fields.table, 'users');
    assert.match(String(conflict.fields.detail), /already exists/);
    await rejectsWith(getUser(worker.database, newId()), 'NOT_FOUND');
  });

  test('a parser that is not the identity, or an option that cannot cross, fails loudly', async () => {
    const client = clientOf(worker.database) as PgliteWorkerClient;
    await assert.rejects(
      client.query('select now() as at', [], { parsers: { 1184: (value: string) => new Date(value) } }),
      /parser for type 1184 is not the identity/,
    );
    await assert.rejects(client.query('select 1', [], { serializers: { 25: String } }), /"serializers" cannot cross/);
    await assert.rejects(client.query('select $1::text as t', [() => 1]), /could not be cloned/);
    assert.deepEqual((await client.query('select $1::int as n', [7])).rows, [{ n: 7 }]);
  });

  test('many concurrent queries get their own answers', async () => {
    const answers = (await Promise.all(
      Array.from({ length: 200 }, (_, index) => worker.database.db.execute(sql`select ${index}::int as n, repeat('x', ${index}) as s`)),
    )) as unknown as Results[];
    answers.forEach((answer, index) => assert.deepEqual(answer.rows, [{ n: index, s: 'x'.repeat(index) }]));
  });

  test('a transaction holds PGlite while it runs: others wait, never see its rows, and it rolls back whole', async () => {
    const { database } = worker;
    const user = await makeUser(database);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const transaction = database.db.transaction(async (tx) => {
      await tx.insert(conversations).values({ id: newId(), userId: user.id, title: 'uncommitted' });
      entered();
      await gate;
      // Queries of the transaction run while the ones outside it wait behind it.
      const seen = await tx.select().from(conversations).where(eq(conversations.userId, user.id));
      assert.deepEqual(seen.map((row) => row.title), ['uncommitted']);
      // A savepoint rolled back inside it.
      await assert.rejects(
        tx.transaction(async (nested) => {
          await nested.insert(conversations).values({ id: newId(), userId: user.id, title: 'nested' });
          throw new Error('undo the savepoint');
        }),
        /undo the savepoint/,
      );
      throw new Error('roll back');
    });
    await inside;
    let outsideDone = false;
    const outside = Promise.all(
      Array.from({ length: 40 }, (_, index) =>
        index % 2 === 1 ? createConversation(database, user.id, { title: `c${index}` }) : listConversations(database, user.id, { limit: 100 }),
      ),
    ).finally(() => (outsideDone = true));
    await sleep(200);
    assert.equal(outsideDone, false, 'queries outside the transaction wait for it');
    release();
    await assert.rejects(transaction, /roll back/);
    for (const result of await outside) {
      if ('items' in result) assert.ok(!result.items.some((item) => item.title === 'uncommitted' || item.title === 'nested'));
    }
    const titles = (await listConversations(database, user.id, { limit: 100 })).items.map((item) => item.title).sort();
    assert.deepEqual(titles, Array.from({ length: 20 }, (_, index) => `c${index * 2 + 1}`).sort());
  });

  test('concurrent transactions run one after another and commit', async () => {
    const { database } = worker;
    const user = await makeUser(database);
    await Promise.all(
      Array.from({ length: 10 }, () =>
        database.db.transaction(async (tx) => {
          const before = await tx.select().from(conversations).where(eq(conversations.userId, user.id));
          await sleep(5);
          await tx.insert(conversations).values({ id: newId(), userId: user.id, title: `n${before.length}` });
          await tx.transaction(async (nested) => {
            await nested.update(conversations).set({ title: sql`${conversations.title} || '!'` }).where(eq(conversations.title, `n${before.length}`));
          });
        }),
      ),
    );
    const titles = (await listConversations(database, user.id, { limit: 100 })).items.map((item) => item.title).sort();
    assert.deepEqual(titles, Array.from({ length: 10 }, (_, index) => `n${index}!`).sort());
  });
});

describe('a PGlite worker that dies or closes', { skip, timeout: 120_000 }, () => {
  test('a terminated worker fails every pending and later query with DATABASE_UNAVAILABLE', async () => {
    const client = await PgliteWorkerClient.open({ loadDataDir: await pgliteTemplate() });
    const database = await openDatabase({ pglite: client });
    try {
      const user = await makeUser(database);
      let entered!: () => void;
      const inside = new Promise<void>((resolve) => (entered = resolve));
      // A transaction whose query is running in the worker, and a query waiting behind it for PGlite's lock.
      const transaction = database.db.transaction(async (tx) => {
        await tx.insert(conversations).values({ id: newId(), userId: user.id, title: 'in flight' });
        entered();
        await tx.execute(sql`select count(*) from generate_series(1, 100000000)`);
      });
      await inside;
      const waiting = getUser(database, user.id);
      await sleep(300);
      const started = Date.now();
      await client.terminate();
      assertUnavailable(await within(10_000, transaction), 'the transaction, its query running');
      assertUnavailable(await within(10_000, waiting), 'a query waiting for the lock');
      assert.ok(Date.now() - started < 10_000);
      assertUnavailable(await within(10_000, getUser(database, user.id)), 'a later query');
      assertUnavailable(await within(10_000, createConversation(database, user.id, { title: 'after' })), 'a later write');
      assertUnavailable(await within(10_000, database.ping()), 'ping');
      const error = await within(10_000, getUser(database, user.id));
      assert.ok((error as PromiseRejectedResult).reason instanceof DbError);
    } finally {
      await within(10_000, database.close());
    }
  });

  test('close ends the worker; queries after it are DATABASE_UNAVAILABLE; closing twice is fine', async () => {
    const client = await PgliteWorkerClient.open({ loadDataDir: await pgliteTemplate() });
    const database = await openDatabase({ pglite: client });
    await database.ping();
    await database.close();
    assert.equal(client.closed, true);
    await database.close();
    assertUnavailable(await within(10_000, makeUser(database)), 'a query after close');
    assertUnavailable(await within(10_000, database.ping()), 'ping after close');
  });

  test('a data directory PGlite cannot load fails the open, without a hang', async () => {
    const settled = await within(60_000, PgliteWorkerClient.open({ loadDataDir: new Uint8Array(4096).fill(7) }));
    assert.equal(settled.status, 'rejected');
  });

  test('a worker that throws right after reporting open-failed fails the open, not the process', async () => {
    // The order of a real worker's events is up to the threads (a corrupt loadDataDir: PGlite's gunzip can fail
    // again after PGlite.create rejected), so this worker's events are emitted in the losing order, in one tick.
    // An 'error' with no listener would throw out of emit(): the uncaught exception the open must not cause.
    const worker = new FakeWorker();
    const opening = PgliteWorkerClient.handshake(worker as unknown as Worker);
    worker.emit('message', { kind: 'open-failed', error: toWireError(new Error('could not read the data directory')) });
    worker.emit('error', new Error('gunzip failed again'));
    await assert.rejects(opening, /could not read the data directory/);
    assert.equal(worker.terminated, true);
  });

  test('on disk: the server kind of open keeps its rows in the folder, which in-thread PGlite reads back', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'dialect-worker-'));
    try {
      const seeded = await PGlite.create({ dataDir: join(dataDir, 'pglite'), loadDataDir: await pgliteTemplate() });
      await seeded.close();
      const first = await openDatabase({ dataDir, pgliteWorker: true });
      assert.equal(first.location, join(dataDir, 'pglite'));
      assert.ok(clientOf(first) instanceof PgliteWorkerClient, 'PGlite runs in the worker');
      const user = await makeUser(first);
      await createConversation(first, user.id, { title: 'on disk' });
      await first.close();
      const again = await openDatabase({ dataDir });
      try {
        assert.ok(clientOf(again) instanceof PGlite);
        assert.deepEqual((await listConversations(again, user.id)).items.map((item) => item.title), ['on disk']);
      } finally {
        await again.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
