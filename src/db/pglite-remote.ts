/**
 * PGlite in a worker thread, seen from the main thread. PGlite executes SQL in WebAssembly on the thread that owns
 * it, and the server runs model inference synchronously on the main thread, so an in-thread PGlite makes every
 * statement's CPU add to a request's latency. `PgliteWorkerClient` moves PGlite to a worker (src/db/pglite-worker.ts)
 * and offers what drizzle's PGlite session calls on its client: `query(sql, params, { rowMode, parsers })` and
 * `transaction(async (tx) => …)` with `tx.query`, plus `exec`, `closed` and `close` (docs/persistence.md, "PGlite in
 * a worker thread").
 *
 * Every request is a message with an id; the worker answers each with its result or its error's fields. A
 * transaction is a `begin` message (answered once the worker holds PGlite's transaction lock), queries tagged with
 * its id, and an `end` that commits or rolls back. If the worker dies (an uncaught error, `terminate()`), every
 * pending and later request fails with DATABASE_UNAVAILABLE instead of waiting for ever.
 */
import type { Worker } from 'node:worker_threads';
import { startTsWorker } from '../lib/ts-worker.ts';
import { DbError } from './errors.ts';
import {
  fromWireError,
  identityOids,
  type Reply,
  type Request,
  type RowMode,
  type WireQueryOptions,
  type WorkerInit,
} from './pglite-protocol.ts';

/** The worker's entry, started through src/lib/ts-worker.ts so that its TypeScript loads as the rest does. */
const WORKER_ENTRY = new URL('./pglite-worker.ts', import.meta.url);

export interface PgliteWorkerOptions {
  /** PGlite's folder; in memory when absent. */
  dataDir?: string;
  /** Start from this data directory dump (PGlite's `dumpDataDir`), in memory unless `dataDir` is given. */
  loadDataDir?: Blob | Uint8Array;
}

interface QueryOptionsIn {
  rowMode?: RowMode;
  parsers?: Record<string, unknown>;
  paramTypes?: number[];
  [other: string]: unknown;
}

/** What a transaction's callback gets: the subset of PGlite's `Transaction` that crosses to the worker. */
export interface PgliteWorkerTransaction {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[], options?: QueryOptionsIn): Promise<Results<T>>;
  exec(sql: string): Promise<Results[]>;
  rollback(): Promise<void>;
  readonly closed: boolean;
}

export interface Results<T = Record<string, unknown>> {
  rows: T[];
  affectedRows?: number;
  fields: { name: string; dataTypeID: number }[];
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

const unavailable = (why: string, cause?: unknown) =>
  new DbError('DATABASE_UNAVAILABLE', `PGlite unavailable: ${why}`, cause === undefined ? {} : { cause });

export class PgliteWorkerClient {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  /** Set once the worker is gone (crashed, terminated or closed): every request then fails with it. */
  #dead: DbError | undefined;
  #closed = false;
  #closeRequested = false;
  #closing: Promise<void> | undefined;

  private constructor(worker: Worker) {
    this.#worker = worker;
  }

  /** Starts the worker and opens PGlite in it; throws (a plain Error with PGlite's message) if it cannot open. */
  static async open(options: PgliteWorkerOptions = {}): Promise<PgliteWorkerClient> {
    const init: WorkerInit = {};
    if (options.dataDir !== undefined) init.dataDir = options.dataDir;
    if (options.loadDataDir !== undefined) {
      init.loadDataDir =
        options.loadDataDir instanceof Uint8Array ? options.loadDataDir : new Uint8Array(await options.loadDataDir.arrayBuffer());
    }
    return PgliteWorkerClient.handshake(startTsWorker(WORKER_ENTRY, init));
  }

  /**
   * Waits for a started worker's answer to its open (`ready` or `open-failed`) and wraps it; terminates it on
   * failure. Separate from `open` so that a test can order a worker's events exactly (tests/db/pglite-worker.test.ts).
   */
  static async handshake(worker: Worker): Promise<PgliteWorkerClient> {
    const client = new PgliteWorkerClient(worker);
    await new Promise<void>((resolve, reject) => {
      const onExit = (code: number) => reject(new Error(`the PGlite worker exited (code ${code}) while opening`));
      // Stays attached until the worker is ready (then #listen takes over) or terminated: a worker that reported
      // `open-failed` can still throw before terminate() lands (a corrupt loadDataDir: PGlite's gunzip can still
      // fail after PGlite.create has rejected), and a worker 'error' with no listener is an uncaught exception of
      // this whole process.
      const onError = (error: Error) => reject(error);
      worker.once('exit', onExit);
      worker.on('error', onError);
      worker.once('message', (reply: Reply) => {
        worker.off('exit', onExit);
        if (reply.kind === 'ready') {
          worker.off('error', onError);
          resolve();
        } else if (reply.kind === 'open-failed') reject(fromWireError(reply.error));
        else reject(new Error(`the PGlite worker answered ${reply.kind} before it was ready`));
      });
    }).catch(async (error: unknown) => {
      await worker.terminate();
      throw error;
    });
    client.#listen();
    return client;
  }

  #listen(): void {
    const worker = this.#worker;
    worker.on('message', (reply: Reply) => {
      if (reply.kind !== 'result' && reply.kind !== 'error') return;
      const pending = this.#pending.get(reply.id);
      if (pending === undefined) return;
      this.#settled(reply.id);
      if (reply.kind === 'result') pending.resolve(reply.value);
      else pending.reject(fromWireError(reply.error));
    });
    worker.on('error', (error) => this.#die(unavailable(`the worker thread failed: ${error.message}`, error)));
    worker.on('messageerror', (error) => {
      // An answer that could not be read: which request it belonged to is lost, so none can be trusted to finish.
      this.#die(unavailable(`an answer of the worker thread could not be read: ${error.message}`, error));
      void worker.terminate();
    });
    worker.on('exit', (code) =>
      this.#die(this.#closed ? unavailable('PGlite is closed') : unavailable(`the worker thread exited (code ${code})`)),
    );
    // Idle, the worker does not keep the process alive (an in-thread PGlite holds no handle either); a pending
    // request does, so that awaiting a query never lets the process end under it.
    worker.unref();
  }

  #die(error: DbError): void {
    this.#dead ??= error;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const request of pending) request.reject(this.#dead);
  }

  #settled(id: number): void {
    this.#pending.delete(id);
    if (this.#pending.size === 0 && this.#dead === undefined) this.#worker.unref();
  }

  #request(message: Request): Promise<unknown> {
    if (this.#dead !== undefined) return Promise.reject(this.#dead);
    if (this.#closeRequested && message.op !== 'close') return Promise.reject(unavailable('PGlite is closed'));
    return new Promise((resolve, reject) => {
      if (this.#pending.size === 0) this.#worker.ref();
      this.#pending.set(message.id, { resolve, reject });
      try {
        this.#worker.postMessage(message);
      } catch (error) {
        // A parameter that cannot be cloned (a function, a class with private state): this request only.
        this.#settled(message.id);
        reject(error);
      }
    });
  }

  #query<T>(sql: string, params: unknown[] | undefined, options: QueryOptionsIn | undefined, txId?: number): Promise<Results<T>> {
    let wire: WireQueryOptions;
    try {
      wire = wireOptions(options);
    } catch (error) {
      return Promise.reject(error);
    }
    const id = this.#nextId++;
    return this.#request({ op: 'query', id, ...(txId === undefined ? {} : { txId }), sql, params: params ?? [], options: wire }) as Promise<
      Results<T>
    >;
  }

  /** PGlite's `query`: one statement with `$n` parameters. */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[], options?: QueryOptionsIn): Promise<Results<T>> {
    return this.#query<T>(sql, params, options);
  }

  /** PGlite's `exec`: several statements without parameters. */
  exec(sql: string): Promise<Results[]> {
    return this.#request({ op: 'exec', id: this.#nextId++, sql }) as Promise<Results[]>;
  }

  /**
   * PGlite's `transaction`: BEGIN, the callback (its `tx.query` calls run inside the transaction, in the worker),
   * then COMMIT; ROLLBACK if the callback throws. Meanwhile other queries wait for the transaction, as in-thread.
   */
  async transaction<T>(callback: (tx: PgliteWorkerTransaction) => Promise<T>): Promise<T> {
    const txId = this.#nextId++;
    await this.#request({ op: 'begin', id: txId });
    let closed = false;
    const end = (commit: boolean) => {
      closed = true;
      return this.#request({ op: 'end', id: this.#nextId++, txId, commit });
    };
    const closedError = () => Promise.reject(new Error('Transaction is closed'));
    const tx: PgliteWorkerTransaction = {
      query: <R>(sql: string, params?: unknown[], options?: QueryOptionsIn) =>
        closed ? closedError() : this.#query<R>(sql, params, options, txId),
      exec: (sql: string) =>
        closed ? closedError() : (this.#request({ op: 'exec', id: this.#nextId++, txId, sql }) as Promise<Results[]>),
      rollback: async () => {
        if (closed) throw new Error('Transaction is closed');
        await end(false);
      },
      get closed() {
        return closed;
      },
    };
    let result: T;
    try {
      result = await callback(tx);
    } catch (error) {
      if (!closed) await end(false).catch(() => {});
      throw error;
    }
    if (!closed) await end(true);
    return result;
  }

  /** True once `close()` was called (as PGlite's `closed`). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Closes PGlite in the worker (flushing it to its folder), then ends the worker. Idempotent. */
  close(): Promise<void> {
    this.#closeRequested = true;
    this.#closing ??= (async () => {
      try {
        if (this.#dead === undefined) await this.#request({ op: 'close', id: this.#nextId++ });
      } finally {
        this.#closed = true;
        await this.#worker.terminate();
      }
    })();
    return this.#closing;
  }

  /**
   * Ends the worker thread at once, as a crash would (PGlite is not closed): every pending and later request
   * fails with DATABASE_UNAVAILABLE. For tests of that failure.
   */
  async terminate(): Promise<void> {
    await this.#worker.terminate();
  }
}

function wireOptions(options: QueryOptionsIn | undefined): WireQueryOptions {
  if (options === undefined) return {};
  const wire: WireQueryOptions = {};
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    if (key === 'rowMode') wire.rowMode = value as RowMode;
    else if (key === 'parsers') wire.identity = identityOids(value as Record<string, unknown>);
    else if (key === 'paramTypes') wire.paramTypes = value as number[];
    else throw new Error(`PGlite worker: the query option "${key}" cannot cross to the worker thread`);
  }
  return wire;
}
