/**
 * Who a request acts for. The same rules over HTTP and WebSocket:
 * - `Authorization: Bearer <key>`: the key's user (an unknown or revoked key is UNAUTHENTICATED, never anonymous);
 * - no key, on a server bound to loopback with no key configured: the local owner, as local model servers do;
 * - no key otherwise: UNAUTHENTICATED;
 * - a key with the `act_as_discord` scope may add `X-Dialect-Discord-User: <snowflake>` (and optionally
 *   `X-Dialect-Discord-Name: <percent-encoded UTF-8 name>`) to act as that Discord user's own Dialect user, made
 *   on first use.
 */
import type { Database } from '../db/client.ts';
import { getOrCreateOwner, hasActiveApiKeys } from '../db/server-queries.ts';
import { authenticateApiKey, findOrCreateDiscordUser, type User } from '../db/users.ts';
import { ApiError } from './errors.ts';

export const DISCORD_USER_HEADER = 'x-dialect-discord-user';
export const DISCORD_NAME_HEADER = 'x-dialect-discord-name';
/** The scope that lets a key act for Discord users (the bot's key). */
export const ACT_AS_DISCORD = 'act_as_discord';

export interface Principal {
  user: User;
  /** The key used, or null for the local owner. */
  keyId: string | null;
  scopes: string[];
  /** What the limits and logs are keyed by: the acting user. */
  rateKey: string;
}

/** Credentials as they came: HTTP headers, or a graphql-ws connection's params (same names, any case). */
export interface Credentials {
  authorization?: string | undefined;
  discordUser?: string | undefined;
  discordName?: string | undefined;
}

export function credentialsFromHeaders(get: (name: string) => string | string[] | undefined): Credentials {
  const one = (name: string): string | undefined => {
    const value = get(name);
    return Array.isArray(value) ? value[0] : value;
  };
  return {
    authorization: one('authorization'),
    discordUser: one(DISCORD_USER_HEADER),
    discordName: one(DISCORD_NAME_HEADER),
  };
}

/** graphql-ws `connectionParams`: `{ authorization, discordUser?, discordName? }`, or the header names themselves. */
export function credentialsFromParams(params: Record<string, unknown> | undefined): Credentials {
  const lower = new Map(Object.entries(params ?? {}).map(([k, v]) => [k.toLowerCase(), typeof v === 'string' ? v : undefined]));
  return {
    authorization: lower.get('authorization'),
    discordUser: lower.get('discorduser') ?? lower.get(DISCORD_USER_HEADER),
    discordName: lower.get('discordname') ?? lower.get(DISCORD_NAME_HEADER),
  };
}

export class Authenticator {
  #owner: User | undefined;
  #keysChecked = 0;
  #hasKeys = true;

  constructor(
    private readonly database: Database,
    /** Whether the server listens on loopback only. */
    private readonly loopback: boolean,
    private readonly now: () => number = Date.now,
  ) {}

  async authenticate(credentials: Credentials): Promise<Principal> {
    const header = credentials.authorization?.trim();
    let principal: Principal;
    if (header === undefined || header === '') {
      if (!this.loopback || (await this.#keysConfigured())) {
        throw new ApiError('UNAUTHENTICATED', 'an API key is required: send Authorization: Bearer <key>');
      }
      const owner = await this.owner();
      principal = { user: owner, keyId: null, scopes: [ACT_AS_DISCORD], rateKey: owner.id };
    } else {
      const match = /^Bearer\s+(\S+)$/i.exec(header);
      if (match === null) throw new ApiError('UNAUTHENTICATED', 'the Authorization header must be "Bearer <key>"');
      const found = await authenticateApiKey(this.database, match[1] as string);
      if (found === null) throw new ApiError('UNAUTHENTICATED', 'unknown or revoked API key');
      // The key's user comes with it (one statement, no second read).
      const user = found.user;
      principal = { user, keyId: found.keyId, scopes: found.scopes, rateKey: user.id };
    }
    const discordId = credentials.discordUser?.trim();
    if (discordId === undefined || discordId === '') return principal;
    if (!principal.scopes.includes(ACT_AS_DISCORD)) {
      throw new ApiError('FORBIDDEN', `acting for a Discord user needs a key with the ${ACT_AS_DISCORD} scope`);
    }
    if (!/^\d{1,32}$/.test(discordId)) {
      throw new ApiError('BAD_REQUEST', `${DISCORD_USER_HEADER} must be a Discord user id (a decimal snowflake)`);
    }
    const user = await findOrCreateDiscordUser(this.database, {
      discordId,
      displayName: discordName(credentials.discordName) ?? `discord:${discordId}`,
    });
    return { user, keyId: principal.keyId, scopes: principal.scopes.filter((s) => s !== ACT_AS_DISCORD), rateKey: user.id };
  }

  /** The local owner (made on first use). */
  async owner(): Promise<User> {
    this.#owner ??= await getOrCreateOwner(this.database);
    return this.#owner;
  }

  /** Whether any key exists, re-read at most once a second (keys are made by `dialect keys`, another process). */
  async #keysConfigured(): Promise<boolean> {
    const now = this.now();
    if (now - this.#keysChecked > 1000) {
      this.#hasKeys = await hasActiveApiKeys(this.database);
      this.#keysChecked = now;
    }
    return this.#hasKeys;
  }
}

function discordName(raw: string | undefined): string | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  let name = raw;
  try {
    name = decodeURIComponent(raw);
  } catch {
    // not percent-encoded: take it as it is
  }
  name = name.replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, 100);
  return name === '' ? undefined : name;
}
