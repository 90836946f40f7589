import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eq } from 'drizzle-orm';
import {
  authenticateApiKey,
  createApiKey,
  createUser,
  findOrCreateDiscordUser,
  getUser,
  hashApiKey,
  listApiKeys,
  newId,
  revokeApiKey,
} from '../../src/db/index.ts';
import { apiKeys } from '../../src/db/schema/index.ts';
import { forEachDriver } from './harness.ts';
import { makeUser, rejectsWith } from './fixtures.ts';

forEachDriver((context) => {
  test('a Discord identity maps to one user, even on concurrent first contact', async () => {
    const { database } = context;
    const discordId = String(100_000_000_000_000_000n + BigInt(Math.floor(Math.random() * 1e9)));
    const users = await Promise.all(
      Array.from({ length: 4 }, () => findOrCreateDiscordUser(database, { discordId, displayName: 'ann' })),
    );
    assert.equal(new Set(users.map((user) => user.id)).size, 1);
    assert.equal((await getUser(database, users[0]!.id)).discordId, discordId);
    await rejectsWith(createUser(database, { displayName: 'twin', discordId }), 'CONFLICT');
    await rejectsWith(findOrCreateDiscordUser(database, { discordId: 'abc', displayName: 'x' }), 'INVALID_INPUT', 'discordId');
    await rejectsWith(createUser(database, { displayName: 'n'.repeat(101) }), 'FIELD_TOO_LONG', 'displayName');
    await rejectsWith(getUser(database, newId()), 'NOT_FOUND');
  });

  test('API keys are stored as hashes, authenticate until revoked, and record their last use', async () => {
    const { database } = context;
    const user = await makeUser(database);
    const other = await makeUser(database);
    const { key, apiKey } = await createApiKey(database, user.id, { name: 'laptop', scopes: ['read', 'generate'] });
    assert.match(key, /^dlk_[0-9a-f]{8}_[A-Za-z0-9_-]{32}$/);
    assert.ok(key.startsWith(apiKey.prefix));
    const [row] = await database.db.select().from(apiKeys).where(eq(apiKeys.id, apiKey.id));
    assert.equal(row!.keyHash, hashApiKey(key));
    assert.ok(!JSON.stringify(row).includes(key.slice(13)), 'the secret is not stored');
    assert.equal(row!.lastUsedAt, null);

    const who = await authenticateApiKey(database, key);
    assert.deepEqual(who, { userId: user.id, keyId: apiKey.id, scopes: ['read', 'generate'], user });
    const used = (await listApiKeys(database, user.id))[0]!.lastUsedAt;
    assert.ok(used instanceof Date);
    // Within a minute the use is not written again (authenticating is a read, not a write per request).
    assert.ok(await authenticateApiKey(database, key));
    assert.equal((await listApiKeys(database, user.id))[0]!.lastUsedAt?.getTime(), used.getTime());
    assert.equal(await authenticateApiKey(database, `${key}x`), null);
    assert.equal(await authenticateApiKey(database, 'x'.repeat(1000)), null);

    assert.equal((await listApiKeys(database, other.id)).length, 0);
    await rejectsWith(revokeApiKey(database, other.id, apiKey.id), 'NOT_FOUND');
    assert.ok(await authenticateApiKey(database, key), "another user cannot revoke it");
    const revoked = await revokeApiKey(database, user.id, apiKey.id);
    assert.ok(revoked.revokedAt instanceof Date);
    assert.equal(await authenticateApiKey(database, key), null);
    const again = await revokeApiKey(database, user.id, apiKey.id);
    assert.equal(again.revokedAt!.getTime(), revoked.revokedAt!.getTime());
    await rejectsWith(createApiKey(database, user.id, { name: 'bad', scopes: ['Not A Scope'] }), 'INVALID_INPUT', 'scopes');
    await rejectsWith(createApiKey(database, user.id, { name: '', scopes: [] }), 'INVALID_INPUT', 'keyName');
  });
});
