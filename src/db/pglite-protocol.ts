/**
 * What crosses between the main thread and the PGlite worker (src/db/pglite-worker.ts): plain, structured-clone
 * data only. Functions cannot cross, so a query's `parsers` travel as the type OIDs whose values stay text (the
 * only parsers drizzle's PGlite session passes, see `identityOids`), and errors travel as their fields and are
 * rebuilt on the main thread with the same `code`, `constraint`, `detail`… that `toDbError` reads.
 */

export type RowMode = 'array' | 'object';

/** What the worker is started with (`workerData`). */
export interface WorkerInit {
  /** The PGlite folder; in memory when absent. */
  dataDir?: string;
  /** A data directory dump (`dumpDataDir`) to start from: tests' clones of the migrated template. */
  loadDataDir?: Uint8Array;
}

export interface WireQueryOptions {
  rowMode?: RowMode;
  /** Types whose values come back as PostgreSQL's text, unparsed (drizzle's identity parsers). */
  identity?: number[];
  paramTypes?: number[];
}

/** Main thread → worker. `id` names the request; its reply carries the same id. */
export type Request =
  | { op: 'query'; id: number; txId?: number; sql: string; params: unknown[]; options: WireQueryOptions }
  | { op: 'exec'; id: number; txId?: number; sql: string }
  /** Starts a transaction; its id is this request's id. Answered once BEGIN ran (PGlite's lock is held). */
  | { op: 'begin'; id: number }
  /** Ends transaction `txId`: commit, or roll back. */
  | { op: 'end'; id: number; txId: number; commit: boolean }
  | { op: 'close'; id: number };

/** Worker → main thread. */
export type Reply =
  | { kind: 'ready' }
  | { kind: 'open-failed'; error: WireError }
  | { kind: 'result'; id: number; value: unknown }
  | { kind: 'error'; id: number; error: WireError };

/** An error's name, message, stack and every primitive own field (PostgreSQL's `code`, `constraint`, …). */
export interface WireError {
  name: string;
  message: string;
  stack: string | undefined;
  fields: Record<string, string | number | boolean>;
}

export function toWireError(error: unknown): WireError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error), stack: undefined, fields: {} };
  const fields: Record<string, string | number | boolean> = {};
  for (const key of Object.keys(error)) {
    const value = (error as unknown as Record<string, unknown>)[key];
    if (key === 'name' || key === 'message' || key === 'stack') continue;
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') fields[key] = value;
  }
  return { name: error.name, message: error.message, stack: error.stack, fields };
}

/** The worker's error, rebuilt: an Error with the same name, message and fields (its stack is the worker's). */
export function fromWireError(wire: WireError): Error {
  const error = new Error(wire.message);
  Object.assign(error, wire.fields);
  Object.defineProperty(error, 'name', { value: wire.name, enumerable: false, writable: true, configurable: true });
  if (wire.stack !== undefined) error.stack = `${wire.stack}\n    at (PGlite worker thread)`;
  return error;
}

const PROBE = '\u0000dialect: identity parser probe';

/**
 * The OIDs of `parsers`, each checked to be the identity (drizzle-orm 0.45's PGlite session passes `(value) =>
 * value` for the date, time, interval and numeric[] types, so that its own column mappers see the text). Any other
 * parser would have to run in the worker, which a function cannot reach: fail loudly rather than return values
 * parsed differently from the in-thread driver.
 */
export function identityOids(parsers: Record<string, unknown> | undefined): number[] {
  if (parsers === undefined) return [];
  const oids: number[] = [];
  for (const [key, parser] of Object.entries(parsers)) {
    const oid = Number(key);
    let identity = false;
    if (typeof parser === 'function') {
      try {
        identity = (parser as (value: string, type: number) => unknown)(PROBE, oid) === PROBE;
      } catch {
        identity = false;
      }
    }
    if (!Number.isInteger(oid) || !identity) {
      throw new Error(
        `PGlite worker: the query's parser for type ${key} is not the identity, and functions cannot cross to the ` +
          'worker thread (did drizzle-orm change its PGlite parsers?); set DIALECT_PGLITE_WORKER=0 to run PGlite in-thread',
      );
    }
    oids.push(oid);
  }
  return oids;
}
