/**
 * The PGlite worker thread: owns one PGlite instance, opened as `openPglite` opens it in-thread, and runs the
 * main thread's queries (src/db/pglite-remote.ts) on this thread, so that SQL does not take turns with model
 * inference on the main event loop. Requests are handled as they come, as in-thread calls would be: queries
 * outside a transaction wait for PGlite's own lock, and a transaction holds that lock from `begin` to `end` while
 * the queries tagged with its id run inside it.
 */
import { parentPort } from 'node:worker_threads';
import { workerInput } from '../lib/ts-worker.ts';
import { PGlite, type ParserOptions, type QueryOptions, type Transaction } from '@electric-sql/pglite';
import { type Reply, type Request, toWireError, type WireQueryOptions, type WorkerInit } from './pglite-protocol.ts';

if (parentPort === null) throw new Error('pglite-worker.ts runs as a worker thread');
const port = parentPort;
const init = workerInput<WorkerInit>();

const post = (reply: Reply) => port.postMessage(reply);

/** Answers request `id` with a value, or with the error of a value that cannot be cloned. */
function answer(id: number, value: unknown): void {
  try {
    post({ kind: 'result', id, value });
  } catch (error) {
    post({ kind: 'error', id, error: toWireError(error) });
  }
}

/** Thrown inside a transaction's callback to make PGlite roll it back. */
const ROLLBACK = Symbol('rollback');

interface OpenTransaction {
  tx: Transaction;
  /** Lets the callback return (commit) or throw ROLLBACK; the transaction's outcome answers request `replyTo`. */
  finish(commit: boolean, replyTo: number): void;
}

const transactions = new Map<number, OpenTransaction>();
const identityParsers = new Map<string, ParserOptions>();

function queryOptions(options: WireQueryOptions): QueryOptions {
  const result: QueryOptions = {};
  if (options.rowMode !== undefined) result.rowMode = options.rowMode;
  if (options.paramTypes !== undefined) result.paramTypes = options.paramTypes;
  if (options.identity !== undefined && options.identity.length > 0) {
    const key = options.identity.join(',');
    let parsers = identityParsers.get(key);
    if (parsers === undefined) {
      parsers = {};
      for (const oid of options.identity) parsers[oid] = (value: string) => value;
      identityParsers.set(key, parsers);
    }
    result.parsers = parsers;
  }
  return result;
}

function target(pglite: PGlite, txId: number | undefined): PGlite | Transaction {
  if (txId === undefined) return pglite;
  const open = transactions.get(txId);
  if (open === undefined) throw new Error('Transaction is closed');
  return open.tx;
}

function begin(pglite: PGlite, id: number): void {
  let begun = false;
  let replyTo = id;
  pglite
    .transaction(async (tx) => {
      const decision = new Promise<boolean>((resolve) => {
        transactions.set(id, {
          tx,
          finish(commit, requestId) {
            replyTo = requestId;
            transactions.delete(id);
            resolve(commit);
          },
        });
      });
      begun = true;
      answer(id, id);
      if (!(await decision)) throw ROLLBACK;
    })
    .then(
      () => answer(replyTo, null),
      (error: unknown) => {
        transactions.delete(id);
        if (error === ROLLBACK) answer(replyTo, null);
        else post({ kind: 'error', id: begun ? replyTo : id, error: toWireError(error) });
      },
    );
}

async function handle(pglite: PGlite, request: Request): Promise<unknown> {
  switch (request.op) {
    case 'query':
      return await target(pglite, request.txId).query(request.sql, request.params, queryOptions(request.options));
    case 'exec':
      return await target(pglite, request.txId).exec(request.sql);
    case 'close':
      if (!pglite.closed) await pglite.close();
      return null;
    default:
      throw new Error(`unknown request ${(request as { op: string }).op}`);
  }
}

async function main(): Promise<void> {
  let pglite: PGlite;
  try {
    pglite = await PGlite.create({
      ...(init.dataDir === undefined ? {} : { dataDir: init.dataDir }),
      ...(init.loadDataDir === undefined ? {} : { loadDataDir: new Blob([init.loadDataDir]) }),
    });
  } catch (error) {
    post({ kind: 'open-failed', error: toWireError(error) });
    return;
  }
  port.on('message', (request: Request) => {
    if (request.op === 'begin') {
      begin(pglite, request.id);
      return;
    }
    if (request.op === 'end') {
      const open = transactions.get(request.txId);
      if (open === undefined) post({ kind: 'error', id: request.id, error: toWireError(new Error('Transaction is closed')) });
      else open.finish(request.commit, request.id);
      return;
    }
    handle(pglite, request).then(
      (value) => answer(request.id, value),
      (error: unknown) => post({ kind: 'error', id: request.id, error: toWireError(error) }),
    );
  });
  post({ kind: 'ready' });
}

void main();
