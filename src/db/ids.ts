/**
 * Ids are UUID v7 (RFC 9562): 48 bits of milliseconds then 74 random bits. Time order keeps btree inserts at the
 * right edge and makes `id` a natural tie-breaker after `created_at`; the random part makes ids unguessable, so
 * an id in a URL or a Discord message gives nothing away; and `uuid` is a native 16-byte type on every
 * PostgreSQL (uuidv7() only exists from 18, so the application makes them, on both drivers alike).
 */
import { randomBytes } from 'node:crypto';
import { DbError } from './errors.ts';

let lastMs = 0;
let sequence = 0;

export function newId(now = Date.now()): string {
  const bytes = randomBytes(16);
  // Within one millisecond, a 12-bit counter in rand_a keeps ids made by this process increasing.
  if (now <= lastMs) {
    sequence += 1;
    if (sequence > 0xfff) {
      lastMs += 1;
      sequence = 0;
    }
    now = lastMs;
  } else {
    lastMs = now;
    sequence = bytes.readUInt16BE(6) & 0x7ff;
  }
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = 0x70 | ((sequence >> 8) & 0x0f);
  bytes[7] = sequence & 0xff;
  bytes[8] = 0x80 | ((bytes[8] ?? 0) & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isId(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}

/**
 * Checks an id that came from outside. A malformed id is reported as NOT_FOUND, like an unknown one: to a caller
 * there is no such row either way.
 */
export function checkId(value: unknown, what: string): string {
  if (!isId(value)) throw new DbError('NOT_FOUND', `${what} not found`);
  return value.toLowerCase();
}
