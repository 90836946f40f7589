/** Users and their API keys. */
import { createHash, randomBytes } from 'node:crypto';
import { and, desc, eq, isNull, sql } from 'drizzle-orm';
import type { Database } from './client.ts';
import { DbError, notFound } from './errors.ts';
import { checkText, guard, LIMITS } from './guard.ts';
import { checkId, newId } from './ids.ts';
import { apiKeys, users, type ApiKeyRow, type UserRow } from './schema/index.ts';

export interface User {
  id: string;
  displayName: string;
  discordId: string | null;
  createdAt: Date;
}

const toUser = (row: UserRow): User => ({
  id: row.id,
  displayName: row.displayName,
  discordId: row.discordId,
  createdAt: row.createdAt,
});

export async function createUser(database: Database, input: { displayName: string; discordId?: string }): Promise<User> {
  checkText('displayName', input.displayName);
  if (input.discordId !== undefined) checkDiscordId(input.discordId);
  return guard(async () => {
    const [row] = await database.db
      .insert(users)
      .values({ id: newId(), displayName: input.displayName, discordId: input.discordId ?? null })
      .returning();
    return toUser(row!);
  });
}

/** The acting user themself; NOT_FOUND when the id is unknown (a deleted user's key or session). */
export async function getUser(database: Database, userId: string): Promise<User> {
  const id = checkId(userId, 'user');
  return guard(async () => {
    const [row] = await database.db.select().from(users).where(eq(users.id, id));
    if (row === undefined) throw notFound('user');
    return toUser(row);
  });
}

/**
 * The user behind a Discord account, made on first contact (the bot calls this for every interaction).
 * Concurrent first contacts get the same user: the insert yields to the unique index.
 */
export async function findOrCreateDiscordUser(
  database: Database,
  input: { discordId: string; displayName: string },
): Promise<User> {
  checkDiscordId(input.discordId);
  checkText('displayName', input.displayName);
  return guard(async () => {
    // One statement in the usual case (the user exists: a read, nothing written); it inserts only when none is found.
    const [row] = rawRows(
      await database.db.execute(sql`
        with found as (select * from ${users} where discord_id = ${input.discordId}::text),
        made as (
          insert into ${users} (id, display_name, discord_id)
          select ${newId()}::uuid, ${input.displayName}::text, ${input.discordId}::text where not exists (select 1 from found)
          on conflict (discord_id) do nothing
          returning *
        )
        select * from found union all select * from made`),
    );
    if (row !== undefined) return userOf(row);
    // A concurrent first call made the user after this statement's snapshot: read it.
    const [again] = await database.db.select().from(users).where(eq(users.discordId, input.discordId));
    if (again === undefined) throw new DbError('INTERNAL', 'Discord user vanished after insert');
    return toUser(again);
  });
}

type RawRow = Record<string, unknown>;
const rawRows = (result: unknown): RawRow[] => (result as { rows?: RawRow[] }).rows ?? (result as RawRow[]);
const userOf = (row: RawRow): User => ({
  id: String(row.id),
  displayName: String(row.display_name),
  discordId: (row.discord_id as string | null) ?? null,
  createdAt: row.created_at instanceof Date ? row.created_at : new Date(String(row.created_at)),
});

/** Deletes the acting user and everything they own (conversations, turns, images, jobs, keys). */
export async function deleteUser(database: Database, userId: string): Promise<void> {
  const id = checkId(userId, 'user');
  await guard(async () => {
    const deleted = await database.db.delete(users).where(eq(users.id, id)).returning({ id: users.id });
    if (deleted.length === 0) throw notFound('user');
  });
}

function checkDiscordId(discordId: string): void {
  checkText('discordId', discordId);
  if (!/^[0-9]{1,32}$/.test(discordId)) {
    throw new DbError('INVALID_INPUT', 'a Discord id is a decimal snowflake', { field: 'discordId' });
  }
}

// --- API keys ---------------------------------------------------------------------------------------------------

export interface ApiKey {
  id: string;
  name: string;
  /** The public start of the key (`dlk_abcd1234`), to tell keys apart in a listing. */
  prefix: string;
  scopes: string[];
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

const toApiKey = (row: ApiKeyRow): ApiKey => ({
  id: row.id,
  name: row.name,
  prefix: row.prefix,
  scopes: row.scopes,
  createdAt: row.createdAt,
  lastUsedAt: row.lastUsedAt,
  revokedAt: row.revokedAt,
});

const SCOPE = /^[a-z][a-z0-9_:.-]*$/;

/** sha256 suffices: keys are 192-bit random secrets, not passwords, so there is nothing to brute-force. */
export const hashApiKey = (key: string): string => createHash('sha256').update(key, 'utf8').digest('hex');

/** Creates a key for the acting user. The returned `key` is the only time the secret exists outside the caller. */
export async function createApiKey(
  database: Database,
  userId: string,
  input: { name: string; scopes: string[] },
): Promise<{ key: string; apiKey: ApiKey }> {
  const owner = checkId(userId, 'user');
  checkText('keyName', input.name);
  if (!Array.isArray(input.scopes) || input.scopes.length > LIMITS.scopes) {
    throw new DbError('INVALID_INPUT', `scopes must be a list of at most ${LIMITS.scopes}`, { field: 'scopes' });
  }
  for (const scope of input.scopes) {
    checkText('scope', scope);
    if (!SCOPE.test(scope)) throw new DbError('INVALID_INPUT', `malformed scope "${scope}"`, { field: 'scopes' });
  }
  const prefix = `dlk_${randomBytes(4).toString('hex')}`;
  const key = `${prefix}_${randomBytes(24).toString('base64url')}`;
  return guard(async () => {
    const [row] = await database.db
      .insert(apiKeys)
      .values({ id: newId(), userId: owner, name: input.name, prefix, keyHash: hashApiKey(key), scopes: [...new Set(input.scopes)] })
      .returning();
    return { key, apiKey: toApiKey(row!) };
  });
}

/** The acting user's keys, newest first, revoked ones included (with `revokedAt`). */
export async function listApiKeys(database: Database, userId: string): Promise<ApiKey[]> {
  const owner = checkId(userId, 'user');
  return guard(async () => {
    const rows = await database.db
      .select()
      .from(apiKeys)
      .where(eq(apiKeys.userId, owner))
      .orderBy(desc(apiKeys.createdAt), desc(apiKeys.id));
    return rows.map(toApiKey);
  });
}

/** Revokes one of the acting user's keys; revoking twice keeps the first time. */
export async function revokeApiKey(database: Database, userId: string, keyId: string): Promise<ApiKey> {
  const owner = checkId(userId, 'user');
  const id = checkId(keyId, 'API key');
  return guard(async () => {
    const [row] = await database.db
      .update(apiKeys)
      .set({ revokedAt: sql`coalesce(${apiKeys.revokedAt}, now())` })
      .where(and(eq(apiKeys.id, id), eq(apiKeys.userId, owner)))
      .returning();
    if (row === undefined) throw notFound('API key');
    return toApiKey(row);
  });
}

/**
 * Who a presented key acts for, and with which scopes; null for an unknown or revoked key (the two are not told
 * apart). Records the use in `last_used_at`, at most once a minute per key to spare writes.
 */
export async function authenticateApiKey(
  database: Database,
  key: string,
): Promise<{ userId: string; keyId: string; scopes: string[]; user: User } | null> {
  if (typeof key !== 'string' || key.length > 200) return null;
  return guard(async () => {
    // One statement: the live key and its user; last_used_at is written at most once a minute (a plain read else),
    // so authenticating is not a write per request. A revoked key is refused at once (nothing is cached).
    const [row] = rawRows(
      await database.db.execute(sql`
        with k as (
          select id, user_id, scopes, last_used_at from ${apiKeys} where key_hash = ${hashApiKey(key)}::text and revoked_at is null
        ),
        touched as (
          update ${apiKeys} set last_used_at = now() from k
          where ${apiKeys}.id = k.id and (k.last_used_at is null or k.last_used_at < now() - interval '1 minute')
        )
        select k.id as key_id, k.scopes, u.* from k join ${users} u on u.id = k.user_id`),
    );
    if (row === undefined) return null;
    const scopes = Array.isArray(row.scopes) ? (row.scopes as string[]) : parseTextArray(String(row.scopes));
    return { userId: String(row.id), keyId: String(row.key_id), scopes, user: userOf(row) };
  });
}

/** A text[] in PostgreSQL's text form, for a driver that leaves it unparsed (scopes are plain words). */
function parseTextArray(text: string): string[] {
  const inner = text.replace(/^\{|\}$/g, '');
  return inner === '' ? [] : inner.split(',').map((part) => part.replace(/^"|"$/g, ''));
}
