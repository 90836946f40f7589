/** Column types shared by the aggregates. */
import { customType, timestamp, uuid } from 'drizzle-orm/pg-core';

/**
 * Every timestamp has millisecond precision: a JavaScript Date holds milliseconds, so a pagination cursor built
 * from a Date matches the stored value exactly (a microsecond column would skip or repeat rows at page borders).
 */
export const timestampMs = (name: string) => timestamp(name, { withTimezone: true, precision: 3, mode: 'date' });

/** Ids are UUID v7, made by the application (src/db/ids.ts): time-ordered, 16 bytes, not guessable. */
export const id = (name = 'id') => uuid(name).primaryKey();

export const bytea = customType<{ data: Buffer; driverData: Buffer | Uint8Array }>({
  dataType: () => 'bytea',
  fromDriver: (value) => (Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)),
});

export const tsvector = customType<{ data: string }>({ dataType: () => 'tsvector' });
