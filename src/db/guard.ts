/** The rules every data-layer function applies to what comes in and what goes wrong. */
import { type AnyColumn, type SQL, sql } from 'drizzle-orm';
import { DbError, toDbError } from './errors.ts';

/** Runs a data-layer body; any failure leaves as a DbError (a failed transaction has been rolled back). */
export async function guard<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (error) {
    throw toDbError(error);
  }
}

/** Limits of text fields, in characters. The database has the same limits as CHECK constraints. */
export const LIMITS = {
  displayName: 100,
  discordId: 32,
  keyName: 100,
  scope: 64,
  scopes: 16,
  title: 200,
  prompt: 8_000,
  answer: 32_000,
  /** A search query. */
  query: 500,
  errorCode: 64,
  errorMessage: 2_000,
  modelName: 200,
  modelVersion: 200,
  /** PNG bytes of one image. */
  pngBytes: 16 * 1024 * 1024,
  /** Images in one turn, per role. */
  imagesPerTurn: 16,
  /** Rows in one page. */
  pageSize: 100,
} as const;

export function checkText(field: keyof typeof LIMITS, value: string, options: { allowEmpty?: boolean } = {}): string {
  if (typeof value !== 'string') throw new DbError('INVALID_INPUT', `${field} must be a string`, { field });
  if (!options.allowEmpty && value.trim() === '') throw new DbError('INVALID_INPUT', `${field} is empty`, { field });
  if (value.length > LIMITS[field]) {
    throw new DbError('FIELD_TOO_LONG', `${field} has ${value.length} characters, at most ${LIMITS[field]}`, { field });
  }
  return value;
}

/** Cuts a diagnostic text (an error message) to its limit instead of refusing the write it belongs to. */
export function clip(value: string | null | undefined, max: number): string | null {
  if (value === null || value === undefined) return null;
  return value.length <= max ? value : `${value.slice(0, max - 1)}…`;
}

export function pageSize(limit: number | undefined, fallback = 20): number {
  if (limit === undefined) return fallback;
  if (!Number.isInteger(limit) || limit < 1 || limit > LIMITS.pageSize) {
    throw new DbError('INVALID_INPUT', `limit must be an integer in [1, ${LIMITS.pageSize}]`, { field: 'limit' });
  }
  return limit;
}

/** A page of rows, newest first, and the cursor of the next page (null on the last page). */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Cursors are opaque to callers: base64url of the last row's (created_at, id). */
export function encodeCursor(createdAt: Date, id: string): string {
  return Buffer.from(JSON.stringify([createdAt.toISOString(), id])).toString('base64url');
}

/** The cursor just after this row (GraphQL's edge cursor): pass it as `cursor` to get the rows after it. */
export const cursorOf = (row: { createdAt: Date; id: string }): string => encodeCursor(row.createdAt, row.id);

export function decodeCursor(cursor: string): { createdAt: string; id: string } {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === 'string' &&
      !Number.isNaN(Date.parse(value[0])) &&
      typeof value[1] === 'string' &&
      /^[0-9a-f-]{36}$/i.test(value[1])
    ) {
      return { createdAt: value[0], id: value[1] };
    }
  } catch {
    // falls through to the error below
  }
  throw new DbError('INVALID_INPUT', 'malformed cursor', { field: 'cursor' });
}

/**
 * The keyset condition of a newest-first page: rows strictly before the cursor's (created_at, id), which the
 * (user_id, created_at, id) indexes serve. Undefined (no condition) for the first page.
 */
export function beforeCursor(createdAt: AnyColumn, id: AnyColumn, cursor: string | undefined): SQL | undefined {
  if (cursor === undefined) return undefined;
  const after = decodeCursor(cursor);
  return sql`(${createdAt}, ${id}) < (${after.createdAt}::timestamptz, ${after.id}::uuid)`;
}

export function toPage<T extends { createdAt: Date; id: string }>(rows: T[], limit: number): Page<T> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last.createdAt, last.id) : null };
}
