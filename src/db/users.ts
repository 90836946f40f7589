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
    await database.db
      .insert(users)
      .values({ id: newId(), displayName: input.displayName, discordId: input.discordId })
      .onConflictDoNothing({ target: users.discordId });
    const [row] = await database.db.select().from(users).where(eq(users.discordId, input.discordId));
    if (row === undefined) throw new DbError('INTERNAL', 'Discord user vanished after insert');
    return toUser(row);
  });
}

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
): Promise<{ userId: string; keyId: string; scopes: string[] } | null> {
  if (typeof key !== 'string' || key.length > 200) return null;
  return guard(async () => {
    const [row] = await database.db
      .update(apiKeys)
      .set({
        lastUsedAt: sql`case when ${apiKeys.lastUsedAt} is null or ${apiKeys.lastUsedAt} < now() - interval '1 minute' then now() else ${apiKeys.lastUsedAt} end`,
      })
      .where(and(eq(apiKeys.keyHash, hashApiKey(key)), isNull(apiKeys.revokedAt)))
      .returning({ userId: apiKeys.userId, keyId: apiKeys.id, scopes: apiKeys.scopes });
    return row ?? null;
  });
}
