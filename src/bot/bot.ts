/**
 * The bot, composed: a discord.js client (intents Guilds, GuildMessages and the privileged MessageContent), the API
 * client, and the handlers. discord.js reconnects to the gateway by itself (resuming when it can); API outages are
 * per request and answered with a friendly error, so the bot needs no restart when the API comes back.
 */
import { Client, Events, GatewayIntentBits } from 'discord.js';
import { DialectApi } from './api-client.ts';
import { HistoryPages } from './commands/history.ts';
import type { BotConfig } from './config.ts';
import type { BotContext } from './context.ts';
import { handleInteraction } from './interactions.ts';
import type { BotLogger } from './logger.ts';
import { handleMessage } from './messages.ts';

export interface DialectBot {
  client: Client;
  ctx: BotContext;
  /** Logs in and resolves when the client is ready. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createBot(config: Pick<BotConfig, 'discordToken' | 'apiUrl' | 'apiKey' | 'publicUrl' | 'discordApi' | 'progressIntervalMs'>, logger: BotLogger): DialectBot {
  const client = new Client({
    intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent],
    ...(config.discordApi === undefined ? {} : { rest: { api: config.discordApi } }),
  });
  const api = new DialectApi({ url: config.apiUrl, apiKey: config.apiKey });
  const ctx: BotContext = { client, api, logger, publicUrl: config.publicUrl, progressIntervalMs: config.progressIntervalMs, history: new HistoryPages() };

  client.on(Events.InteractionCreate, (interaction) => void handleInteraction(interaction, ctx));
  client.on(Events.MessageCreate, (message) => void handleMessage(message, ctx));
  client.on(Events.Error, (error) => logger.error({ err: error }, 'discord client error'));
  client.on(Events.Warn, (message) => logger.warn({ message }, 'discord client warning'));
  client.on(Events.ShardDisconnect, (event, shard) => logger.warn({ shard, code: event.code }, 'gateway disconnected'));
  client.on(Events.ShardReconnecting, (shard) => logger.info({ shard }, 'gateway reconnecting'));
  client.on(Events.ShardResume, (shard, replayed) => logger.info({ shard, replayed }, 'gateway resumed'));

  return {
    client,
    ctx,
    async start() {
      const ready = new Promise<void>((resolve) => client.once(Events.ClientReady, () => resolve()));
      await client.login(config.discordToken);
      await ready;
      logger.info({ user: client.user?.tag, api: config.apiUrl }, 'bot ready');
      // Read the server's limits now, so that attachment checks before acknowledging need no network.
      api.limits().catch((error: unknown) => logger.warn({ err: (error as Error).message }, 'could not read the API limits yet'));
    },
    async stop() {
      await client.destroy();
    },
  };
}

/** What to tell the operator when logging in to Discord fails. */
export function explainLoginError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/disallowed intents/i.test(message)) {
    return 'Discord refused the Message Content intent: turn on "Message Content Intent" on the Bot page of the application in the developer portal';
  }
  if (/token/i.test(message) || (error as { status?: number }).status === 401) {
    return `Discord refused the token (${message}): check DISCORD_TOKEN (the Bot page's token, not the application's public key)`;
  }
  return `the bot could not connect to Discord: ${message}`;
}
