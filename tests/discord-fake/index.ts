/**
 * A fake Discord on loopback for tests of bots written with discord.js: the REST API (`/api/v10/...`), the gateway
 * (a WebSocket speaking opcodes HELLO, IDENTIFY, READY, HEARTBEAT/ACK, RESUME, dispatches) and a CDN for
 * attachments, over an in-memory model of one application, its bot user, guilds, channels, threads, users and
 * messages. Tests play the people: they run slash commands, click buttons, submit modals, use message context menus
 * and send messages, then await what the bot did (acknowledgements, progress edits, final messages with their
 * attachment bytes and components).
 *
 * Point discord.js at it with `new Client({ rest: { api: fake.apiUrl } })`; `GET /gateway/bot` answers with the
 * fake's WebSocket URL. See docs/bot.md ("The fake Discord") for a walkthrough.
 *
 * Deliberately strict where real Discord is: an interaction must be acknowledged within `ackDeadlineMs` (3 s), once;
 * interaction webhooks expire after `tokenLifetimeMs` (15 min); REST calls other than interaction webhooks need
 * `Authorization: Bot <token>`; unknown routes answer 404 and are recorded in `unhandled` so tests can assert none.
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export * from './people.ts';

/** Discord's epoch (2015-01-01), for snowflakes whose timestamps discord.js reads. */
const DISCORD_EPOCH = 1420070400000n;

export const MessageFlag = { Ephemeral: 64, Loading: 128 } as const;
const MESSAGE_CONTENT_INTENT = 1 << 15;
export const ChannelKind = { GuildText: 0, PublicThread: 11 } as const;

export interface FakeUser {
  id: string;
  username: string;
  global_name: string | null;
  discriminator: string;
  avatar: null;
  bot?: boolean;
}

export interface FakeAttachment {
  id: string;
  filename: string;
  size: number;
  url: string;
  proxy_url: string;
  content_type: string;
  width?: number;
  height?: number;
  description?: string;
}

export interface FakeChannel {
  id: string;
  type: number;
  guild_id: string;
  name: string;
  parent_id?: string | null;
  owner_id?: string;
  position?: number;
  permission_overwrites?: unknown[];
  thread_metadata?: { archived: boolean; auto_archive_duration: number; archive_timestamp: string; locked: boolean };
  message_count?: number;
  member_count?: number;
  last_message_id?: string | null;
}

export interface FakeGuild {
  id: string;
  name: string;
  channels: FakeChannel[];
  members: FakeUser[];
}

/** A message as Discord stores it; `history` keeps every earlier version (edits), oldest first. */
export interface FakeMessage {
  id: string;
  channel_id: string;
  guild_id?: string;
  author: FakeUser;
  content: string;
  timestamp: string;
  edited_timestamp: string | null;
  tts: false;
  mention_everyone: false;
  mentions: FakeUser[];
  mention_roles: string[];
  attachments: FakeAttachment[];
  embeds: Record<string, unknown>[];
  components: Record<string, unknown>[];
  pinned: false;
  type: number;
  flags: number;
  webhook_id?: string;
  application_id?: string;
  message_reference?: { message_id: string; channel_id: string; guild_id?: string; type?: number };
  referenced_message?: FakeMessage | null;
  interaction_metadata?: { id: string; type: number; user: FakeUser; authorizing_integration_owners: Record<string, string> };
  thread?: FakeChannel;
  /** Earlier versions of the message (not sent to clients). */
  history?: Omit<FakeMessage, 'history'>[];
  /** Deleted by the bot (not sent to clients). */
  deleted?: boolean;
}

export interface CallbackRecord {
  type: number;
  data: Record<string, unknown> | undefined;
  /** Milliseconds after the interaction was sent. */
  afterMs: number;
}

/** One interaction the fake sent to the bot, and everything the bot answered to it. */
export interface FakeInteraction {
  id: string;
  token: string;
  type: number;
  user: FakeUser;
  channelId: string;
  sentAt: number;
  payload: Record<string, unknown>;
  callbacks: CallbackRecord[];
  /** The response message (callback 4 or 5), edited in place by `PATCH .../messages/@original`. */
  originalId: string | undefined;
  followupIds: string[];
  /** A modal the bot showed (callback 9). */
  modal: Record<string, unknown> | undefined;
}

export interface RecordedRequest {
  method: string;
  path: string;
  at: number;
  status: number;
}

export interface FakeDiscordOptions {
  /** The bot's token; REST and IDENTIFY must present it. Defaults to a fixed test token. */
  token?: string;
  /** Gateway heartbeat interval sent in HELLO. Defaults to 41,250 ms as on Discord. */
  heartbeatIntervalMs?: number;
  /** Time a bot has to acknowledge an interaction. Defaults to 3,000 ms. */
  ackDeadlineMs?: number;
  /** Lifetime of an interaction token for webhook edits and follow-ups. Defaults to 15 minutes. */
  tokenLifetimeMs?: number;
  /** Whether the application may use the privileged Message Content intent (a portal switch). Defaults to true. */
  messageContentIntent?: boolean;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export class FakeDiscord extends EventEmitter {
  readonly token: string;
  readonly applicationId: string;
  readonly bot: FakeUser;
  readonly guilds = new Map<string, FakeGuild>();
  readonly channels = new Map<string, FakeChannel>();
  readonly users = new Map<string, FakeUser>();
  readonly messages = new Map<string, FakeMessage>();
  readonly interactions = new Map<string, FakeInteraction>();
  /** Commands registered with `PUT /applications/{app}/commands` (global) or per guild (`guild:<id>`). */
  readonly commands = new Map<string, Record<string, unknown>[]>();
  /** Every REST request, in order. */
  readonly requests: RecordedRequest[] = [];
  /** REST requests no route answered (a bot calling something the fake does not model). */
  readonly unhandled: string[] = [];
  /** Gateway counters, for tests of the connection itself. */
  readonly gatewayStats = { connections: 0, identifies: 0, resumes: 0, heartbeats: 0 };
  readonly files = new Map<string, { bytes: Buffer; contentType: string }>();

  #server: Server | undefined;
  #wss: WebSocketServer | undefined;
  #sockets = new Set<GatewaySession>();
  #sessions = new Map<string, { seq: number; backlog: { t: string; d: unknown; s: number }[] }>();
  #next = 0n;
  #failures: { pattern: RegExp; status: number; body: Record<string, unknown>; headers: Record<string, string>; left: number }[] = [];
  readonly #options: Required<FakeDiscordOptions>;
  #port = 0;

  constructor(options: FakeDiscordOptions = {}) {
    super();
    this.setMaxListeners(0);
    this.#options = {
      token: options.token ?? 'fake-bot-token',
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 41_250,
      ackDeadlineMs: options.ackDeadlineMs ?? 3000,
      tokenLifetimeMs: options.tokenLifetimeMs ?? 15 * 60_000,
      messageContentIntent: options.messageContentIntent ?? true,
    };
    this.token = this.#options.token;
    this.applicationId = this.snowflake();
    this.bot = { id: this.applicationId, username: 'Dialect', global_name: null, discriminator: '0', avatar: null, bot: true };
    this.users.set(this.bot.id, this.bot);
  }

  static async start(options: FakeDiscordOptions = {}): Promise<FakeDiscord> {
    const fake = new FakeDiscord(options);
    await fake.listen();
    return fake;
  }

  get port(): number {
    return this.#port;
  }
  /** The REST root to give discord.js (`rest.api`). */
  get apiUrl(): string {
    return `http://127.0.0.1:${this.#port}/api`;
  }
  get gatewayUrl(): string {
    return `ws://127.0.0.1:${this.#port}/gateway`;
  }
  get cdnUrl(): string {
    return `http://127.0.0.1:${this.#port}/cdn`;
  }

  snowflake(): string {
    this.#next += 1n;
    return (((BigInt(Date.now()) - DISCORD_EPOCH) << 22n) | (this.#next & 0x3fffffn)).toString();
  }

  // ------------------------------------------------------------------------------------------------ lifecycle

  async listen(port = 0): Promise<void> {
    const server = createServer((req, res) => void this.#handle(req, res));
    const wss = new WebSocketServer({ noServer: true });
    server.on('upgrade', (request, socket, head) => {
      if (!(request.url ?? '').startsWith('/gateway')) {
        socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
        return;
      }
      wss.handleUpgrade(request, socket, head, (ws) => this.#accept(ws, request));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.#server = server;
    this.#wss = wss;
    this.#port = (server.address() as AddressInfo).port;
  }

  /** Stops serving (an outage: REST refuses connections and the gateway drops). `listen(fake.port)` restarts it. */
  async close(): Promise<void> {
    for (const session of this.#sockets) session.socket.terminate();
    this.#sockets.clear();
    this.#wss?.close();
    const server = this.#server;
    this.#server = undefined;
    if (server !== undefined) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  /** Drops every gateway connection with a close code (4000: unknown error, which clients resume after). */
  dropGateway(code = 4000): void {
    for (const session of this.#sockets) session.socket.close(code, 'dropped by the test');
  }

  /** The next `times` REST requests whose `METHOD /path` matches get this answer instead (e.g. a 429). */
  failNext(pattern: RegExp, status: number, body: Record<string, unknown> = {}, headers: Record<string, string> = {}, times = 1): void {
    this.#failures.push({ pattern, status, body, headers, left: times });
  }

  /** Number of identified gateway sessions. */
  get connectedSessions(): number {
    return [...this.#sockets].filter((s) => s.identified).length;
  }

  // ------------------------------------------------------------------------------------------------ world

  createUser(username: string): FakeUser {
    const user: FakeUser = { id: this.snowflake(), username, global_name: username, discriminator: '0', avatar: null };
    this.users.set(user.id, user);
    for (const guild of this.guilds.values()) guild.members.push(user);
    return user;
  }

  /** A guild with one text channel (`#general`); dispatched as GUILD_CREATE when the bot is connected. */
  createGuild(name = 'Test guild'): FakeGuild {
    const id = this.snowflake();
    const guild: FakeGuild = { id, name, channels: [], members: [...this.users.values()] };
    this.guilds.set(id, guild);
    this.createChannel(id, 'general', false);
    if (this.connectedSessions > 0) this.dispatch('GUILD_CREATE', this.#guildPayload(guild));
    return guild;
  }

  createChannel(guildId: string, name: string, announce = true): FakeChannel {
    const guild = this.#guild(guildId);
    const channel: FakeChannel = {
      id: this.snowflake(),
      type: ChannelKind.GuildText,
      guild_id: guildId,
      name,
      position: guild.channels.length,
      permission_overwrites: [],
      parent_id: null,
      last_message_id: null,
    };
    guild.channels.push(channel);
    this.channels.set(channel.id, channel);
    if (announce && this.connectedSessions > 0) this.dispatch('CHANNEL_CREATE', channel);
    return channel;
  }

  /** A public thread started by `owner` (optionally from a message), dispatched as THREAD_CREATE. */
  createThread(parentId: string, name: string, owner: FakeUser, fromMessageId?: string): FakeChannel {
    const parent = this.#channel(parentId);
    const thread: FakeChannel = {
      id: fromMessageId ?? this.snowflake(),
      type: ChannelKind.PublicThread,
      guild_id: parent.guild_id,
      parent_id: parent.id,
      owner_id: owner.id,
      name,
      thread_metadata: { archived: false, auto_archive_duration: 1440, archive_timestamp: new Date().toISOString(), locked: false },
      message_count: 0,
      member_count: 1,
      last_message_id: null,
    };
    this.channels.set(thread.id, thread);
    this.#guild(parent.guild_id).channels.push(thread);
    if (fromMessageId !== undefined) {
      const starter = this.messages.get(fromMessageId);
      if (starter !== undefined) starter.thread = thread;
    }
    this.dispatch('THREAD_CREATE', { ...thread, newly_created: true });
    this.emit('change');
    return thread;
  }

  /** Stores bytes on the fake CDN as an attachment a person uploads. */
  upload(channelId: string, filename: string, bytes: Buffer, contentType: string, size?: { width: number; height: number }): FakeAttachment {
    const id = this.snowflake();
    return this.#storeAttachment(channelId, id, filename, bytes, contentType, size);
  }

  // ------------------------------------------------------------------------------------------------ reading

  /** A channel's visible messages (not deleted, not ephemeral), oldest first. */
  channelMessages(channelId: string): FakeMessage[] {
    return [...this.messages.values()].filter((m) => m.channel_id === channelId && m.deleted !== true);
  }

  /** Bytes of an attachment served by the fake CDN. */
  attachmentBytes(attachment: FakeAttachment): Buffer {
    const file = this.files.get(new URL(attachment.url).pathname);
    if (file === undefined) throw new Error(`no file at ${attachment.url}`);
    return file.bytes;
  }

  /** Resolves with the predicate's first non-undefined, non-false value, re-checked on every change (and every 50 ms). */
  waitFor<T>(check: () => T | undefined | false, timeoutMs = 15_000, what = 'condition'): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const test = (): boolean => {
        const value = check();
        if (value === undefined || value === false) return false;
        cleanup();
        resolve(value);
        return true;
      };
      const onChange = () => void test();
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`fake Discord: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      // Also polled, for conditions on things outside the fake (a test's own sockets, logs).
      const poll = setInterval(onChange, 50);
      const cleanup = () => {
        clearTimeout(timer);
        clearInterval(poll);
        this.off('change', onChange);
      };
      this.on('change', onChange);
      test();
    });
  }

  // ------------------------------------------------------------------------------------------------ gateway

  /**
   * Sends an event to every gateway session. A session whose socket dropped still gets the event in its backlog,
   * replayed when it resumes, as Discord does; so nothing is lost across a reconnect.
   */
  dispatch(t: string, d: unknown): void {
    for (const sessionId of this.#sessions.keys()) {
      const attached = [...this.#sockets].find((s) => s.identified && s.sessionId === sessionId);
      if (attached !== undefined) attached.dispatch(t, d);
      else this.nextSeq(sessionId, t, d);
    }
  }

  #accept(socket: WebSocket, request: IncomingMessage): void {
    const query = new URL(request.url ?? '/', 'http://x').searchParams;
    if (query.get('encoding') !== 'json' || query.get('v') !== '10' || query.has('compress')) {
      socket.close(4012, 'this fake speaks v10, json, uncompressed');
      return;
    }
    this.gatewayStats.connections += 1;
    const session = new GatewaySession(this, socket, this.#options.heartbeatIntervalMs);
    this.#sockets.add(session);
    socket.on('close', () => {
      this.#sockets.delete(session);
      this.emit('change');
    });
  }

  /** @internal Called by a session on IDENTIFY. */
  identify(session: GatewaySession, d: Record<string, unknown>): void {
    if (d.token !== this.token) {
      session.socket.close(4004, 'Authentication failed');
      return;
    }
    if (!this.#options.messageContentIntent && (Number(d.intents ?? 0) & MESSAGE_CONTENT_INTENT) !== 0) {
      session.socket.close(4014, 'Disallowed intent(s).');
      return;
    }
    this.gatewayStats.identifies += 1;
    // Sessions nobody is attached to are superseded by this one (their events would never be resumed).
    for (const id of this.#sessions.keys()) {
      if (![...this.#sockets].some((s) => s.sessionId === id && s.socket.readyState === s.socket.OPEN)) this.#sessions.delete(id);
    }
    const sessionId = this.snowflake();
    this.#sessions.set(sessionId, { seq: 0, backlog: [] });
    session.identified = true;
    session.sessionId = sessionId;
    session.intents = Number(d.intents ?? 0);
    const guilds = [...this.guilds.values()];
    session.dispatch('READY', {
      v: 10,
      user: { ...this.bot, verified: true, mfa_enabled: false, flags: 0 },
      guilds: guilds.map((g) => ({ id: g.id, unavailable: true })),
      session_id: sessionId,
      resume_gateway_url: this.gatewayUrl,
      shard: d.shard ?? [0, 1],
      application: { id: this.applicationId, flags: 0 },
    });
    for (const guild of guilds) session.dispatch('GUILD_CREATE', this.#guildPayload(guild));
    this.emit('change');
  }

  /** @internal Called by a session on RESUME: replays what it missed, or refuses an unknown session. */
  resume(session: GatewaySession, d: Record<string, unknown>): void {
    const state = this.#sessions.get(String(d.session_id));
    if (d.token !== this.token || state === undefined) {
      session.send({ op: 9, d: false, s: null, t: null });
      return;
    }
    this.gatewayStats.resumes += 1;
    session.identified = true;
    session.sessionId = String(d.session_id);
    const seq = Number(d.seq ?? 0);
    for (const event of state.backlog) if (event.s > seq) session.send({ op: 0, t: event.t, d: event.d, s: event.s });
    session.dispatch('RESUMED', {});
    this.emit('change');
  }

  /** @internal Sequence numbers per session (kept across reconnects for RESUME). */
  nextSeq(sessionId: string, t: string, d: unknown): number {
    const state = this.#sessions.get(sessionId) ?? { seq: 0, backlog: [] };
    state.seq += 1;
    state.backlog.push({ t, d, s: state.seq });
    if (state.backlog.length > 200) state.backlog.shift();
    this.#sessions.set(sessionId, state);
    return state.seq;
  }

  /** @internal */
  heartbeat(): void {
    this.gatewayStats.heartbeats += 1;
    this.emit('change');
  }

  #guildPayload(guild: FakeGuild): Record<string, unknown> {
    const now = new Date().toISOString();
    return {
      id: guild.id,
      name: guild.name,
      icon: null,
      owner_id: guild.members.find((m) => m.bot !== true)?.id ?? this.bot.id,
      afk_channel_id: null,
      afk_timeout: 300,
      verification_level: 0,
      default_message_notifications: 0,
      explicit_content_filter: 0,
      roles: [{ id: guild.id, name: '@everyone', permissions: '1071698660929', position: 0, color: 0, hoist: false, managed: false, mentionable: false, flags: 0 }],
      emojis: [],
      stickers: [],
      features: [],
      mfa_level: 0,
      system_channel_id: null,
      system_channel_flags: 0,
      rules_channel_id: null,
      vanity_url_code: null,
      description: null,
      banner: null,
      premium_tier: 0,
      preferred_locale: 'en-US',
      public_updates_channel_id: null,
      nsfw_level: 0,
      premium_progress_bar_enabled: false,
      joined_at: now,
      large: false,
      unavailable: false,
      member_count: guild.members.length + 1,
      voice_states: [],
      members: [this.bot, ...guild.members].map((user) => ({ user, roles: [], joined_at: now, deaf: false, mute: false, flags: 0 })),
      channels: guild.channels.filter((c) => c.type === ChannelKind.GuildText),
      threads: guild.channels.filter((c) => c.type === ChannelKind.PublicThread),
      presences: [],
      stage_instances: [],
      guild_scheduled_events: [],
      soundboard_sounds: [],
    };
  }

  // ------------------------------------------------------------------------------------------------ REST

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const method = req.method ?? 'GET';
    const record: RecordedRequest = { method, path: url.pathname, at: Date.now(), status: 200 };
    this.requests.push(record);
    const send = (status: number, body?: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      if (body === undefined) {
        res.writeHead(status, headers).end();
      } else if (Buffer.isBuffer(body)) {
        res.writeHead(status, { 'content-length': body.length, ...headers }).end(body);
      } else {
        const text = JSON.stringify(body);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers }).end(text);
      }
      this.emit('change');
    };
    try {
      const failure = this.#failures.find((f) => f.left > 0 && f.pattern.test(`${method} ${url.pathname}`));
      if (failure !== undefined) {
        failure.left -= 1;
        send(failure.status, failure.body, failure.headers);
        return;
      }
      if (url.pathname.startsWith('/cdn/')) {
        const file = this.files.get(url.pathname);
        if (file === undefined) send(404, { message: 'Not Found', code: 0 });
        else send(200, file.bytes, { 'content-type': file.contentType });
        return;
      }
      const match = /^\/api\/v10(\/.*)$/.exec(url.pathname);
      if (match === null) throw new HttpError(404, 0, '404: Not Found');
      const route = match[1] as string;
      const { json, files } = await readBody(req);
      const result = this.#route(method, route, json, files, req.headers.authorization, url.searchParams);
      if (result === undefined) send(204);
      else send(200, result);
    } catch (error) {
      if (error instanceof HttpError) {
        if (error.status === 404 && error.code === 0) this.unhandled.push(`${method} ${url.pathname}`);
        send(error.status, { message: error.message, code: error.code });
      } else {
        send(500, { message: String(error), code: 0 });
      }
    }
  }

  #route(
    method: string,
    route: string,
    body: Record<string, unknown>,
    files: Map<string, { bytes: Buffer; filename: string; contentType: string }>,
    authorization: string | undefined,
    query: URLSearchParams,
  ): unknown {
    const parts = route.split('/').slice(1).map((part) => decodeURIComponent(part));
    const is = (m: string, pattern: string): boolean => {
      if (m !== method) return false;
      const p = pattern.split('/').slice(1);
      return p.length === parts.length && p.every((seg, i) => seg.startsWith(':') || seg === parts[i]);
    };
    const at = (i: number) => parts[i] as string;

    // Interaction webhooks authenticate by their token, not the bot's.
    if (is('POST', '/interactions/:id/:token/callback')) return this.#callback(at(1), at(2), body, files);
    if (parts[0] === 'webhooks') return this.#webhook(method, parts, body, files);

    if (authorization !== `Bot ${this.token}`) throw new HttpError(401, 0, '401: Unauthorized');
    if (is('GET', '/gateway/bot')) {
      return {
        url: `ws://127.0.0.1:${this.#port}/gateway`,
        shards: 1,
        session_start_limit: { total: 1000, remaining: 999, reset_after: 0, max_concurrency: 1 },
      };
    }
    if (is('GET', '/users/@me')) return this.bot;
    if (is('GET', '/applications/@me')) return { id: this.applicationId, name: 'Dialect', flags: 0, bot: this.bot, description: '', icon: null };
    if (is('PUT', '/applications/:app/commands') || is('PUT', '/applications/:app/guilds/:guild/commands')) {
      if (at(1) !== this.applicationId) throw new HttpError(403, 50001, 'Missing Access');
      const key = parts.length === 5 ? `guild:${at(3)}` : 'global';
      const list = (body as unknown as Record<string, unknown>[]).map((command) => ({
        ...command,
        id: this.snowflake(),
        application_id: this.applicationId,
        version: this.snowflake(),
        type: command.type ?? 1,
        ...(parts.length === 5 ? { guild_id: at(3) } : {}),
      }));
      this.commands.set(key, list);
      return list;
    }
    if (is('GET', '/applications/:app/commands')) return this.commands.get('global') ?? [];
    if (is('GET', '/applications/:app/guilds/:guild/commands')) return this.commands.get(`guild:${at(3)}`) ?? [];
    if (is('GET', '/channels/:id')) return this.#channel(at(1));
    if (is('POST', '/channels/:id/typing')) return undefined;
    if (is('GET', '/channels/:id/messages')) {
      this.#channel(at(1));
      const limit = Math.min(100, Number(query.get('limit') ?? 50));
      const before = query.get('before');
      return this.channelMessages(at(1))
        .filter((m) => (m.flags & MessageFlag.Ephemeral) === 0 && (before === null || BigInt(m.id) < BigInt(before)))
        .reverse()
        .slice(0, limit)
        .map((m) => this.#public(m));
    }
    if (is('GET', '/channels/:id/messages/:mid')) return this.#public(this.#message(at(1), at(3)));
    if (is('POST', '/channels/:id/messages')) {
      const channel = this.#channel(at(1));
      const message = this.#newMessage(channel, this.bot, body, files);
      return this.#public(message);
    }
    if (is('PATCH', '/channels/:id/messages/:mid')) {
      const message = this.#message(at(1), at(3));
      if (message.author.id !== this.bot.id) throw new HttpError(403, 50005, 'Cannot edit a message authored by another user');
      this.#edit(message, body, files);
      return this.#public(message);
    }
    if (is('DELETE', '/channels/:id/messages/:mid')) {
      this.#message(at(1), at(3)).deleted = true;
      this.dispatch('MESSAGE_DELETE', { id: at(3), channel_id: at(1) });
      return undefined;
    }
    if (is('POST', '/channels/:id/messages/:mid/threads')) {
      const message = this.#message(at(1), at(3));
      if (message.thread !== undefined) throw new HttpError(400, 160004, 'A thread has already been created for this message');
      return this.createThread(at(1), String(body.name ?? 'thread').slice(0, 100), this.bot, message.id);
    }
    if (is('POST', '/channels/:id/threads')) return this.createThread(at(1), String(body.name ?? 'thread').slice(0, 100), this.bot);
    throw new HttpError(404, 0, '404: Not Found');
  }

  #callback(id: string, token: string, body: Record<string, unknown>, files: Map<string, FileUpload>): undefined {
    const interaction = this.interactions.get(id);
    if (interaction === undefined || interaction.token !== token) throw new HttpError(404, 10062, 'Unknown interaction');
    const afterMs = Date.now() - interaction.sentAt;
    if (interaction.callbacks.length > 0) throw new HttpError(400, 40060, 'Interaction has already been acknowledged.');
    if (afterMs > this.#options.ackDeadlineMs) throw new HttpError(404, 10062, 'Unknown interaction');
    const type = Number(body.type);
    const data = body.data as Record<string, unknown> | undefined;
    interaction.callbacks.push({ type, data, afterMs });
    const channel = this.#channel(interaction.channelId);
    const responseType = interaction.type === 2 && (interaction.payload.data as { type: number }).type !== 1 ? 23 : 20;
    switch (type) {
      case 4: // CHANNEL_MESSAGE_WITH_SOURCE
      case 5: {
        // DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
        const flags = Number(data?.flags ?? 0) | (type === 5 ? MessageFlag.Loading : 0);
        const message = this.#newMessage(channel, this.bot, { ...(type === 4 ? data : {}), flags }, files, {
          type: responseType,
          webhook_id: this.applicationId,
          application_id: this.applicationId,
          interaction_metadata: this.#metadata(interaction),
        });
        interaction.originalId = message.id;
        break;
      }
      case 6: // DEFERRED_UPDATE_MESSAGE
        break;
      case 7: {
        // UPDATE_MESSAGE
        const target = (interaction.payload.message as { id: string } | undefined)?.id;
        if (target === undefined) throw new HttpError(400, 50035, 'Invalid Form Body');
        this.#edit(this.#message(interaction.channelId, target), data ?? {}, files);
        break;
      }
      case 9: // MODAL
        interaction.modal = data;
        break;
      default:
        throw new HttpError(400, 50035, `Invalid Form Body: callback type ${type}`);
    }
    this.emit('change');
    return undefined;
  }

  #webhook(method: string, parts: string[], body: Record<string, unknown>, files: Map<string, FileUpload>): unknown {
    const [, appId, token, messagesPart, messageId] = parts;
    if (appId !== this.applicationId) throw new HttpError(404, 10015, 'Unknown Webhook');
    const interaction = [...this.interactions.values()].find((i) => i.token === token);
    if (interaction === undefined || Date.now() - interaction.sentAt > this.#options.tokenLifetimeMs) {
      throw new HttpError(401, 50027, 'Invalid Webhook Token');
    }
    if (interaction.callbacks.length === 0) throw new HttpError(404, 10015, 'Unknown Webhook');
    const channel = this.#channel(interaction.channelId);
    if (parts.length === 3 && method === 'POST') {
      const message = this.#newMessage(channel, this.bot, body, files, {
        webhook_id: this.applicationId,
        application_id: this.applicationId,
        interaction_metadata: this.#metadata(interaction),
      });
      interaction.followupIds.push(message.id);
      return this.#public(message);
    }
    if (messagesPart !== 'messages' || messageId === undefined || parts.length !== 5) throw new HttpError(404, 0, '404: Not Found');
    let id = messageId;
    if (messageId === '@original') {
      const callback = interaction.callbacks[0] as CallbackRecord;
      if (callback.type === 6 || callback.type === 7) id = (interaction.payload.message as { id: string }).id;
      else if (interaction.originalId !== undefined) id = interaction.originalId;
      else throw new HttpError(404, 10008, 'Unknown Message');
    }
    const message = this.#message(interaction.channelId, id);
    if (method === 'GET') return this.#public(message);
    if (method === 'PATCH') {
      this.#edit(message, body, files);
      return this.#public(message);
    }
    if (method === 'DELETE') {
      message.deleted = true;
      this.dispatch('MESSAGE_DELETE', { id: message.id, channel_id: message.channel_id });
      this.emit('change');
      return undefined;
    }
    throw new HttpError(404, 0, '404: Not Found');
  }

  // ------------------------------------------------------------------------------------------------ messages

  /** @internal Creates a message (from the bot over REST, or from a person through `people.ts`). */
  newMessage(channel: FakeChannel, author: FakeUser, body: Record<string, unknown>, attachments: FakeAttachment[] = []): FakeMessage {
    const message = this.#newMessage(channel, author, body, new Map());
    message.attachments.push(...attachments);
    return message;
  }

  #newMessage(
    channel: FakeChannel,
    author: FakeUser,
    body: Record<string, unknown>,
    files: Map<string, FileUpload>,
    extra: Partial<FakeMessage> = {},
  ): FakeMessage {
    const content = String(body.content ?? '');
    if (content.length > 2000) throw new HttpError(400, 50035, 'Invalid Form Body: content: Must be 2000 or fewer in length.');
    const id = this.snowflake();
    const reference = body.message_reference as { message_id?: string } | undefined;
    const referenced = reference?.message_id === undefined ? undefined : this.messages.get(reference.message_id);
    if (reference?.message_id !== undefined && referenced === undefined) throw new HttpError(400, 50035, 'Invalid Form Body: message_reference: Unknown message');
    const message: FakeMessage = {
      id,
      channel_id: channel.id,
      guild_id: channel.guild_id,
      author,
      content,
      timestamp: new Date().toISOString(),
      edited_timestamp: null,
      tts: false,
      mention_everyone: false,
      mentions: mentionedUsers(content, this.users),
      mention_roles: [],
      attachments: [],
      embeds: (body.embeds as Record<string, unknown>[] | undefined) ?? [],
      components: (body.components as Record<string, unknown>[] | undefined) ?? [],
      pinned: false,
      type: referenced === undefined ? 0 : 19,
      flags: Number(body.flags ?? 0),
      ...extra,
    };
    if (referenced !== undefined) {
      message.message_reference = { message_id: referenced.id, channel_id: referenced.channel_id, guild_id: channel.guild_id, type: 0 };
      message.referenced_message = this.#public(referenced);
    }
    message.attachments = this.#attachmentsFrom(channel.id, [], body, files);
    this.messages.set(id, message);
    channel.last_message_id = id;
    if ((message.flags & MessageFlag.Ephemeral) === 0) this.dispatch('MESSAGE_CREATE', this.#public(message));
    this.emit('change');
    return message;
  }

  #edit(message: FakeMessage, body: Record<string, unknown>, files: Map<string, FileUpload>): void {
    const { history, ...current } = message;
    message.history = [...(history ?? []), structuredClone(current)];
    if ('content' in body) message.content = String(body.content ?? '');
    if (message.content.length > 2000) throw new HttpError(400, 50035, 'Invalid Form Body: content: Must be 2000 or fewer in length.');
    if ('embeds' in body) message.embeds = (body.embeds as Record<string, unknown>[] | null) ?? [];
    if ('components' in body) message.components = (body.components as Record<string, unknown>[] | null) ?? [];
    if ('flags' in body && body.flags !== undefined) message.flags = (message.flags & MessageFlag.Ephemeral) | Number(body.flags);
    message.flags &= ~MessageFlag.Loading;
    message.attachments = this.#attachmentsFrom(message.channel_id, message.attachments, body, files);
    message.edited_timestamp = new Date().toISOString();
    if ((message.flags & MessageFlag.Ephemeral) === 0) this.dispatch('MESSAGE_UPDATE', this.#public(message));
    this.emit('change');
  }

  /** Discord's rule: `attachments` in the body lists what stays (existing ids) and names new files (`files[n]` ids). */
  #attachmentsFrom(channelId: string, existing: FakeAttachment[], body: Record<string, unknown>, files: Map<string, FileUpload>): FakeAttachment[] {
    const listed = body.attachments as { id: string | number; filename?: string; description?: string }[] | undefined;
    if (listed === undefined) {
      return [...existing, ...[...files.values()].map((file) => this.#storeAttachment(channelId, this.snowflake(), file.filename, file.bytes, file.contentType))];
    }
    const result: FakeAttachment[] = [];
    for (const entry of listed) {
      const kept = existing.find((a) => a.id === String(entry.id));
      if (kept !== undefined) {
        result.push(kept);
        continue;
      }
      const file = files.get(String(entry.id));
      if (file === undefined) throw new HttpError(400, 50035, `Invalid Form Body: attachments: no file for id ${entry.id}`);
      const stored = this.#storeAttachment(channelId, this.snowflake(), entry.filename ?? file.filename, file.bytes, file.contentType);
      if (entry.description !== undefined) stored.description = entry.description;
      result.push(stored);
    }
    return result;
  }

  #storeAttachment(channelId: string, id: string, filename: string, bytes: Buffer, contentType: string, size?: { width: number; height: number }): FakeAttachment {
    const path = `/cdn/attachments/${channelId}/${id}/${encodeURIComponent(filename)}`;
    this.files.set(path, { bytes, contentType });
    const url = `http://127.0.0.1:${this.#port}${path}`;
    const dimensions = size ?? pngSize(bytes);
    return { id, filename, size: bytes.length, url, proxy_url: url, content_type: contentType, ...(dimensions === undefined ? {} : dimensions) };
  }

  #metadata(interaction: FakeInteraction): NonNullable<FakeMessage['interaction_metadata']> {
    return {
      id: interaction.id,
      type: interaction.type,
      user: interaction.user,
      authorizing_integration_owners: interaction.payload.authorizing_integration_owners as Record<string, string>,
    };
  }

  /** What clients see of a message. */
  #public(message: FakeMessage): FakeMessage {
    const { history: _history, deleted: _deleted, ...visible } = message;
    return visible;
  }

  #guild(id: string): FakeGuild {
    const guild = this.guilds.get(id);
    if (guild === undefined) throw new HttpError(404, 10004, 'Unknown Guild');
    return guild;
  }

  #channel(id: string): FakeChannel {
    const channel = this.channels.get(id);
    if (channel === undefined) throw new HttpError(404, 10003, 'Unknown Channel');
    return channel;
  }

  #message(channelId: string, id: string): FakeMessage {
    const message = this.messages.get(id);
    if (message === undefined || message.channel_id !== channelId || message.deleted === true) throw new HttpError(404, 10008, 'Unknown Message');
    return message;
  }

  /** @internal Registers an interaction and sends it to the bot. */
  sendInteraction(interaction: FakeInteraction): void {
    this.interactions.set(interaction.id, interaction);
    this.dispatch('INTERACTION_CREATE', interaction.payload);
    this.emit('change');
  }

  /** @internal */
  publicMessage(message: FakeMessage): FakeMessage {
    return this.#public(message);
  }
}

/** One gateway connection. */
export class GatewaySession {
  identified = false;
  sessionId = '';
  intents = 0;

  constructor(
    private readonly fake: FakeDiscord,
    readonly socket: WebSocket,
    heartbeatIntervalMs: number,
  ) {
    socket.on('message', (raw) => this.#receive(raw.toString()));
    this.send({ op: 10, d: { heartbeat_interval: heartbeatIntervalMs }, s: null, t: null });
  }

  send(payload: Record<string, unknown>): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(JSON.stringify(payload));
  }

  dispatch(t: string, d: unknown): void {
    const s = this.fake.nextSeq(this.sessionId, t, d);
    this.send({ op: 0, t, d, s });
  }

  #receive(text: string): void {
    let payload: { op?: number; d?: unknown };
    try {
      payload = JSON.parse(text);
    } catch {
      this.socket.close(4002, 'Decode error');
      return;
    }
    switch (payload.op) {
      case 1:
        this.fake.heartbeat();
        this.send({ op: 11, d: null, s: null, t: null });
        break;
      case 2:
        if (this.identified) this.socket.close(4005, 'Already authenticated');
        else this.fake.identify(this, (payload.d ?? {}) as Record<string, unknown>);
        break;
      case 6:
        this.fake.resume(this, (payload.d ?? {}) as Record<string, unknown>);
        break;
      case 3: // presence update
      case 8: // request guild members
        break;
      default:
        this.socket.close(4001, 'Unknown opcode');
    }
  }
}

interface FileUpload {
  bytes: Buffer;
  filename: string;
  contentType: string;
}

async function readBody(req: IncomingMessage): Promise<{ json: Record<string, unknown>; files: Map<string, FileUpload> }> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks);
  const files = new Map<string, FileUpload>();
  const type = req.headers['content-type'] ?? '';
  if (raw.length === 0) return { json: {}, files };
  if (type.startsWith('multipart/form-data')) {
    const form = await new Response(raw, { headers: { 'content-type': type } }).formData();
    let json: Record<string, unknown> = {};
    const entries: [string, string | Blob][] = [];
    form.forEach((value, key) => entries.push([key, value as string | Blob]));
    for (const [key, value] of entries) {
      if (key === 'payload_json') json = JSON.parse(String(value));
      const index = /^files\[(\w+)\]$/.exec(key)?.[1];
      if (index !== undefined && typeof value !== 'string') {
        const file = value as Blob & { name: string };
        files.set(index, { bytes: Buffer.from(await file.arrayBuffer()), filename: file.name, contentType: file.type || contentTypeOf(file.name) });
      }
    }
    for (const file of files.values()) if (file.contentType === 'application/octet-stream') file.contentType = contentTypeOf(file.filename);
    return { json, files };
  }
  return { json: JSON.parse(raw.toString('utf8')), files };
}

function contentTypeOf(filename: string): string {
  const ext = filename.toLowerCase().split('.').pop();
  return ({ png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp', txt: 'text/plain; charset=utf-8' } as Record<string, string>)[ext ?? ''] ?? 'application/octet-stream';
}

function pngSize(bytes: Buffer): { width: number; height: number } | undefined {
  if (bytes.length < 24 || bytes.readUInt32BE(0) !== 0x89504e47) return undefined;
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

function mentionedUsers(content: string, users: Map<string, FakeUser>): FakeUser[] {
  const found: FakeUser[] = [];
  for (const match of content.matchAll(/<@!?(\d+)>/g)) {
    const user = users.get(match[1] as string);
    if (user !== undefined && !found.includes(user)) found.push(user);
  }
  return found;
}
