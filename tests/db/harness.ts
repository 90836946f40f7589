/**
 * Runs the same database suite against three backends: PGlite in-thread (a clone of a migrated template made once
 * per test run and kept in the temp folder, keyed by the migrations' contents), PGlite in a worker thread as the
 * server runs it (`pglite-worker`: the same template loaded in the worker), and the PostgreSQL server (a fresh,
 * uniquely named database per test file, dropped after it).
 *
 * DIALECT_TEST_DRIVERS=pglite,pglite-worker,pg (the default) narrows the run, e.g. to `pglite-worker`;
 * DIALECT_TEST_PG_URL points at another server (default: postgres://postgres@127.0.0.1:5432/test, which CI and the
 * developers' machines have).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe } from 'node:test';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { MIGRATIONS_FOLDER, openDatabase, type Database, type Driver } from '../../src/db/index.ts';
import { PgliteWorkerClient } from '../../src/db/pglite-remote.ts';

export const ADMIN_URL = process.env.DIALECT_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A driver, and for PGlite where it runs: in the test's thread or in a worker thread. */
export type Backend = Driver | 'pglite-worker';

export const BACKENDS = (process.env.DIALECT_TEST_DRIVERS ?? 'pglite,pglite-worker,pg')
  .split(',')
  .map((name) => name.trim())
  .filter((name): name is Backend => name === 'pglite' || name === 'pglite-worker' || name === 'pg');

/** The selected backends that are plain drivers (`pglite` in-thread, `pg`). */
export const DRIVERS = BACKENDS.filter((name): name is Driver => name === 'pglite' || name === 'pg');

export const driverOf = (backend: Backend): Driver => (backend === 'pg' ? 'pg' : 'pglite');

export interface TestDatabase {
  database: Database;
  /** The server database's connection string (pg only). */
  url: string | undefined;
  dispose(): Promise<void>;
}

function migrationsKey(): string {
  const hash = createHash('sha256');
  // A dump is only loadable by the PGlite that made it.
  hash.update(readFileSync(join(MIGRATIONS_FOLDER, '../node_modules/@electric-sql/pglite/package.json')));
  for (const name of readdirSync(MIGRATIONS_FOLDER, { recursive: true }).map(String).sort()) {
    const path = join(MIGRATIONS_FOLDER, name);
    if (name.endsWith('.sql') || name.endsWith('.json')) hash.update(name).update(readFileSync(path));
  }
  return hash.digest('hex').slice(0, 16);
}

/** A migrated PGlite data directory, dumped once and shared by every test file of the run (and later runs). */
export async function pgliteTemplate(): Promise<Blob> {
  const path = join(tmpdir(), `dialect-pglite-template-${migrationsKey()}.tar`);
  if (!existsSync(path)) {
    const fresh = await PGlite.create();
    const database = await openDatabase({ pglite: fresh });
    const dump = await fresh.dumpDataDir('none');
    await database.close();
    const partial = `${path}.${process.pid}.partial`;
    writeFileSync(partial, Buffer.from(await dump.arrayBuffer()));
    renameSync(partial, path);
  }
  return new Blob([readFileSync(path)]);
}

export async function openTestDatabase(backend: Backend): Promise<TestDatabase> {
  if (backend === 'pglite') {
    const client = await PGlite.create({ loadDataDir: await pgliteTemplate() });
    const database = await openDatabase({ pglite: client });
    return { database, url: undefined, dispose: () => database.close() };
  }
  if (backend === 'pglite-worker') {
    const client = await PgliteWorkerClient.open({ loadDataDir: await pgliteTemplate() });
    const database = await openDatabase({ pglite: client });
    return { database, url: undefined, dispose: () => database.close() };
  }
  const name = `dialect_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await dropAbandoned(admin);
    await admin.query(`create database "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const database = await openDatabase({ url: url.toString(), onConnectionError: () => {} });
  return {
    database,
    url: url.toString(),
    async dispose() {
      await database.close();
      const cleanup = new pg.Client({ connectionString: ADMIN_URL });
      await cleanup.connect();
      try {
        await cleanup.query(`drop database if exists "${name}" with (force)`);
      } finally {
        await cleanup.end();
      }
    },
  };
}

let sweptAbandoned = false;

/** Drops test databases of runs that were killed before their clean-up (their process is gone). */
async function dropAbandoned(admin: pg.Client): Promise<void> {
  if (sweptAbandoned) return;
  sweptAbandoned = true;
  const { rows } = await admin.query<{ datname: string }>("select datname from pg_database where datname like 'dialect\\_test\\_%'");
  for (const { datname } of rows) {
    const pid = Number(/^dialect_test_(\d+)_/.exec(datname)?.[1]);
    if (!Number.isInteger(pid) || isAlive(pid)) continue;
    await admin.query(`drop database if exists "${datname}" with (force)`).catch(() => {});
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
}

export interface DriverContext {
  driver: Driver;
  backend: Backend;
  /** The open database of this driver's suite (valid inside tests). */
  readonly database: Database;
  readonly url: string | undefined;
}

/** Declares `body`'s tests once per backend, each with its own database for this file. */
export function forEachDriver(body: (context: DriverContext) => void): void {
  for (const backend of BACKENDS) {
    describe(backend, () => {
      let handle: TestDatabase | undefined;
      before(async () => {
        handle = await openTestDatabase(backend);
      });
      after(async () => {
        await handle?.dispose();
      });
      body({
        driver: driverOf(backend),
        backend,
        get database() {
          if (handle === undefined) throw new Error('database not open yet');
          return handle.database;
        },
        get url() {
          return handle?.url;
        },
      });
    });
  }
}
