/**
 * A whole Discord deployment in one test process: a real Dialect server (PGlite, a model bundle) on a random port,
 * a bot API key with the act_as_discord scope, the fake Discord on loopback, the commands registered through
 * `registerCommands` (as `npm run bot:register` does), and the real bot (discord.js) logged in to the fake.
 */
import { Writable } from 'node:stream';
import { createBot, type DialectBot } from '../../src/bot/bot.ts';
import { createBotLogger } from '../../src/bot/logger.ts';
import { registerCommands } from '../../src/bot/register.ts';
import { getOrCreateOwner } from '../../src/db/server-queries.ts';
import { createApiKey } from '../../src/db/users.ts';
import { TarModel } from '../../src/model/index.ts';
import { type DialectServer, startServer } from '../../src/server/app.ts';
import { loadConfig } from '../../src/server/config.ts';
import { createLogger } from '../../src/server/logging.ts';
import { JUDGE_MODULE } from '../../src/shapes/judge.ts';
import { openTestDatabase, type TestDatabase } from '../db/harness.ts';
import { FakeDiscord, type FakeChannel, type FakeGuild, type FakeMessage, Person } from '../discord-fake/index.ts';
import { startTestServer } from '../server/helpers.ts';

export const PUBLIC_URL = 'https://dialect.example';

/** Log lines, kept for assertions (report ids, warnings) instead of printed. */
export class Lines extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') this.lines.push(JSON.parse(line));
    done();
  }
}

export interface Deployment {
  handle: TestDatabase;
  server: DialectServer;
  serverEnv: Record<string, string>;
  apiKey: string;
  fake: FakeDiscord;
  guild: FakeGuild;
  channel: FakeChannel;
  bot: DialectBot;
  botLogs: Lines;
  person(name: string): Person;
  /** A new bot process in place of the old one (nothing carried over but what Discord and the API hold). */
  restartBot(): Promise<void>;
  /** Stops the API server (an outage); `restartServer` brings it back on the same port and database. */
  stopServer(): Promise<void>;
  restartServer(): Promise<void>;
  dispose(): Promise<void>;
}

export async function startDeployment(
  options: {
    serverEnv?: Record<string, string>;
    heartbeatIntervalMs?: number;
    /** A model bundle folder to serve instead of the tiny random-weight one. */
    bundleDir?: string;
  } = {},
): Promise<Deployment> {
  const handle = await openTestDatabase('pglite');
  const serverEnv = {
    DIALECT_RATE_PER_MINUTE: '600',
    DIALECT_RATE_BURST: '60',
    DIALECT_MAX_JOBS_PER_USER: '8',
    DIALECT_CONCURRENCY: '4',
    LOG_LEVEL: 'warn',
    ...options.serverEnv,
  };
  const model = options.bundleDir === undefined ? undefined : await TarModel.load({ bundleDir: options.bundleDir, maxBatch: 4, intraOpThreads: 1, judgeModule: JUDGE_MODULE });
  const startApi = async (env: Record<string, string>): Promise<DialectServer> => {
    if (model === undefined) return startTestServer(handle.database, env);
    const config = loadConfig({ PORT: '0', DIALECT_MODEL: options.bundleDir as string, ...env });
    return startServer(config, { database: handle.database, model, logger: createLogger('warn', new Lines()) });
  };
  let server = await startApi(serverEnv);
  const owner = await getOrCreateOwner(handle.database);
  const { key: apiKey } = await createApiKey(handle.database, owner.id, { name: 'discord bot', scopes: ['act_as_discord'] });

  const fake = await FakeDiscord.start(options.heartbeatIntervalMs === undefined ? {} : { heartbeatIntervalMs: options.heartbeatIntervalMs });
  const guild = fake.createGuild('Dialect test');
  const channel = guild.channels[0] as FakeChannel;
  await registerCommands({ token: fake.token, discordApi: fake.apiUrl });

  const botLogs = new Lines();
  const newBot = () =>
    createBot(
      { discordToken: fake.token, discordApi: fake.apiUrl, apiUrl: server.url, apiKey, publicUrl: PUBLIC_URL, progressIntervalMs: 0 },
      createBotLogger('info', botLogs),
    );
  let bot = newBot();
  await bot.start();
  const port = new URL(server.url).port;

  const deployment: Deployment = {
    handle,
    get server() {
      return server;
    },
    serverEnv,
    apiKey,
    fake,
    guild,
    channel,
    get bot() {
      return bot;
    },
    botLogs,
    async restartBot() {
      await bot.stop();
      bot = newBot();
      await bot.start();
    },
    person: (name) => new Person(fake, fake.createUser(name)),
    async stopServer() {
      await server.stop();
    },
    async restartServer() {
      server = await startApi({ ...serverEnv, PORT: port });
    },
    async dispose() {
      await bot.stop();
      await fake.close();
      await server.stop();
      await model?.dispose();
      await handle.dispose();
    },
  };
  return deployment;
}

/** Custom id of the first button of a message whose id starts with `kind:`. */
export function button(message: FakeMessage, kind: string): string {
  for (const row of message.components) {
    for (const component of (row.components as { custom_id?: string }[]) ?? []) {
      if (component.custom_id?.startsWith(`${kind}:`) === true) return component.custom_id;
    }
  }
  throw new Error(`no ${kind} button on message ${message.id}`);
}

/** Whether the message is a finished image result. */
export function isImageResult(message: FakeMessage): boolean {
  return message.attachments.some((a) => /^dialect-[0-9a-f-]{36}\.png$/.test(a.filename));
}
