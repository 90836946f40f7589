/**
 * `dialect keys create|list|revoke`: API keys of the server, over the database the server uses (DATABASE_URL, else
 * PGlite in DIALECT_DATA_DIR). Keys belong to the local owner unless --user names another user. With PGlite, run
 * these while the server is stopped (PGlite is one process's database); with PostgreSQL, any time.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { openDatabase, type Database } from '../../db/client.ts';
import { getOrCreateOwner } from '../../db/server-queries.ts';
import { createApiKey, getUser, listApiKeys, revokeApiKey } from '../../db/users.ts';
import { dataDirHolder } from '../../server/data-dir-lock.ts';
import { UsageError } from '../usage-error.ts';

export const KEYS_HELP = `  dialect keys create --name NAME [--scope SCOPE]... [--user ID]
                                                            print a new API key (shown once)
  dialect keys list [--user ID] [--json]                    the keys, revoked ones marked
  dialect keys revoke KEY_ID [--user ID]                    the key stops working at once
  Scopes: act_as_discord (the bot's key: may act for Discord users with X-Dialect-Discord-User)`;

const KNOWN_SCOPES = new Set(['act_as_discord']);

/** Opens the database `dialect keys` works on, refusing an embedded one that a running server holds. */
async function openForKeys(): Promise<Database> {
  if (process.env.DATABASE_URL === undefined || process.env.DATABASE_URL.trim() === '') {
    const dataDir = resolve(process.env.DIALECT_DATA_DIR?.trim() || 'data');
    const holder = dataDirHolder(dataDir);
    if (holder !== null) {
      throw new UsageError(
        `the server at ${holder.url} (pid ${holder.pid}) has the embedded database in ${dataDir} open; ` +
          'stop it, run this, and start it again (or serve from PostgreSQL with DATABASE_URL)',
      );
    }
  }
  return openDatabase();
}

export async function runKeys(argv: readonly string[], open: () => Promise<Database> = openForKeys): Promise<number> {
  const [action, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      scope: { type: 'string', multiple: true },
      user: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (action !== 'create' && action !== 'list' && action !== 'revoke') {
    throw new UsageError(`keys needs create, list or revoke\n\n${KEYS_HELP}\n`);
  }
  if (action === 'create') {
    if (values.name === undefined || values.name.trim() === '') throw new UsageError('keys create needs --name NAME');
    if (positionals.length > 0) throw new UsageError('keys create takes flags only');
    for (const scope of values.scope ?? []) {
      if (!KNOWN_SCOPES.has(scope)) throw new UsageError(`unknown scope "${scope}" (known: ${[...KNOWN_SCOPES].join(', ')})`);
    }
  }
  if (action === 'revoke' && positionals.length !== 1) throw new UsageError('keys revoke takes one KEY_ID');
  if (action === 'list' && positionals.length > 0) throw new UsageError('keys list takes flags only');

  const database = await open();
  try {
    const user = values.user === undefined ? await getOrCreateOwner(database) : await getUser(database, values.user);
    switch (action) {
      case 'create': {
        const { key, apiKey } = await createApiKey(database, user.id, { name: values.name as string, scopes: values.scope ?? [] });
        process.stdout.write(`${key}\n`);
        process.stderr.write(
          `dialect: key ${apiKey.id} (${apiKey.prefix}, scopes: ${apiKey.scopes.join(', ') || 'none'}) for user ${user.displayName} (${user.id}); ` +
            'it is shown only now: send it as Authorization: Bearer <key>\n',
        );
        return 0;
      }
      case 'list': {
        const keys = await listApiKeys(database, user.id);
        if (values.json) {
          process.stdout.write(`${JSON.stringify(keys)}\n`);
          return 0;
        }
        for (const k of keys) {
          const state = k.revokedAt === null ? 'active' : `revoked ${k.revokedAt.toISOString()}`;
          process.stdout.write(
            `${k.id}  ${k.prefix}  ${k.name}  [${k.scopes.join(',')}]  created ${k.createdAt.toISOString()}  ` +
              `last used ${k.lastUsedAt?.toISOString() ?? 'never'}  ${state}\n`,
          );
        }
        if (keys.length === 0) process.stderr.write('dialect: no keys\n');
        return 0;
      }
      case 'revoke': {
        const revoked = await revokeApiKey(database, user.id, positionals[0] as string);
        process.stderr.write(`dialect: revoked ${revoked.id} (${revoked.prefix}, ${revoked.name})\n`);
        return 0;
      }
    }
  } finally {
    await database.close();
  }
}
