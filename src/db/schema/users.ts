/** The users aggregate: a person, an optional Discord identity, and the API keys that act for them. */
import { sql } from 'drizzle-orm';
import { check, index, pgTable, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { id, timestampMs } from './columns.ts';

export const users = pgTable(
  'users',
  {
    id: id(),
    displayName: text('display_name').notNull(),
    /** Discord's user id (a snowflake, kept as text). Null for a person who never used the bot. */
    discordId: text('discord_id'),
    createdAt: timestampMs('created_at').notNull().defaultNow(),
  },
  (t) => [
    // findOrCreateDiscordUser: the bot's lookup of a Discord identity; also makes it one user per Discord account.
    uniqueIndex('users_discord_id_key').on(t.discordId),
    check('users_display_name_length', sql`char_length(${t.displayName}) between 1 and 100`),
    check('users_discord_id_length', sql`char_length(${t.discordId}) <= 32`),
  ],
);

export const apiKeys = pgTable(
  'api_keys',
  {
    id: id(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    /** The key's public part (`dlk_<prefix>_…`), shown in listings so a person can tell keys apart. */
    prefix: text('prefix').notNull(),
    /** sha256 of the whole key, hex. The key itself is shown once, at creation, and never stored. */
    keyHash: text('key_hash').notNull(),
    scopes: text('scopes').array().notNull(),
    createdAt: timestampMs('created_at').notNull().defaultNow(),
    lastUsedAt: timestampMs('last_used_at'),
    revokedAt: timestampMs('revoked_at'),
  },
  (t) => [
    // authenticateApiKey: every API request looks its key up by hash.
    uniqueIndex('api_keys_key_hash_key').on(t.keyHash),
    // listApiKeys: a user's keys, newest first.
    index('api_keys_user_created_idx').on(t.userId, t.createdAt.desc()),
    check('api_keys_name_length', sql`char_length(${t.name}) between 1 and 100`),
  ],
);

export type UserRow = typeof users.$inferSelect;
export type ApiKeyRow = typeof apiKeys.$inferSelect;
