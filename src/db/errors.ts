/** Typed errors of the data layer. Every function of src/db throws only DbError, with a stable code. */

export type DbErrorCode =
  /** No such row for this user: unknown ids and other users' ids alike (existence is never leaked). */
  | 'NOT_FOUND'
  /** A text or binary field is longer than its limit; `field` names it. */
  | 'FIELD_TOO_LONG'
  /** The input is malformed (a bad id, a bad cursor, a token out of the codebook, an unknown scope…). */
  | 'INVALID_INPUT'
  /** The write clashes with a row that exists (a duplicate Discord id, an import of ids another user holds). */
  | 'CONFLICT'
  /** The state does not allow the change (a job already finished, a revoked key). */
  | 'INVALID_STATE'
  /** The database cannot be reached or dropped the connection; nothing was written. Retry later. */
  | 'DATABASE_UNAVAILABLE'
  /** Anything else: a bug or an unexpected server error. */
  | 'INTERNAL';

export class DbError extends Error {
  override readonly name = 'DbError';
  readonly code: DbErrorCode;
  /** The field at fault, for FIELD_TOO_LONG and INVALID_INPUT. */
  readonly field: string | undefined;

  constructor(code: DbErrorCode, message: string, options: { field?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.field = options.field;
  }
}

export const notFound = (what: string) => new DbError('NOT_FOUND', `${what} not found`);

// SQLSTATE classes and node error codes that mean "the database is not there right now".
const UNAVAILABLE_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '3D000']);

function pgCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Finds the driver's error (anything with a string `code`) under drizzle's wrapper (DrizzleQueryError keeps it as `cause`). */
function driverError(error: unknown): unknown {
  let current = error;
  for (let depth = 0; depth < 5; depth += 1) {
    if (pgCode(current) !== undefined) return current;
    const cause = (current as { cause?: unknown } | null)?.cause;
    if (cause === undefined || cause === null) break;
    current = cause;
  }
  return current;
}

/** Turns any error thrown by a driver into a DbError; DbErrors pass through. Never throws. */
export function toDbError(error: unknown): DbError {
  if (error instanceof DbError) return error;
  const inner = driverError(error);
  // The PGlite worker client fails a query with a DbError (DATABASE_UNAVAILABLE when its thread is gone), which
  // drizzle wraps like any driver error; its string code stops driverError's walk there.
  if (inner instanceof DbError) return inner;
  const code = pgCode(inner);
  const message = inner instanceof Error ? inner.message : String(inner);
  const constraint = (inner as { constraint?: unknown } | null)?.constraint;
  if (code !== undefined && (UNAVAILABLE_NODE_CODES.has(code) || code.startsWith('08') || UNAVAILABLE_SQLSTATES.has(code))) {
    return new DbError('DATABASE_UNAVAILABLE', `database unavailable: ${message}`, { cause: error });
  }
  if (isConnectionLoss(message)) {
    return new DbError('DATABASE_UNAVAILABLE', `database unavailable: ${message}`, { cause: error });
  }
  switch (code) {
    case '23505':
      return new DbError('CONFLICT', `already exists (${String(constraint ?? 'unique')})`, { cause: error });
    case '23503':
      return new DbError('NOT_FOUND', `a referenced row does not exist (${String(constraint ?? 'foreign key')})`, {
        cause: error,
      });
    case '22001':
      return new DbError('FIELD_TOO_LONG', message, { cause: error });
    case '23514': {
      const name = typeof constraint === 'string' ? constraint : '';
      return name.endsWith('_length') || name.endsWith('_size')
        ? new DbError('FIELD_TOO_LONG', `too long (${name})`, { field: name, cause: error })
        : new DbError('INVALID_INPUT', `invalid value (${name || 'check'})`, { field: name, cause: error });
    }
    case '23502':
    case '22P02':
    case '22003':
    case '22007':
    case '22008':
      return new DbError('INVALID_INPUT', message, { cause: error });
    default:
      return new DbError('INTERNAL', `database error: ${message}`, { cause: error });
  }
}

function isConnectionLoss(message: string): boolean {
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Cannot use a pool after calling end|terminating connection|server closed the connection/i.test(
    message,
  );
}
