/** What every command, component and message handler is given: the API client, the logger and the bot's settings. */
import type { Client } from 'discord.js';
import type { DialectApi } from './api-client.ts';
import type { HistoryPages } from './commands/history.ts';
import type { BotLogger } from './logger.ts';

export interface BotContext {
  client: Client;
  api: DialectApi;
  logger: BotLogger;
  /** Base URL of the web page, for links under results. */
  publicUrl: string;
  /** Least time between two progress edits of one message (Discord rate-limits edits). */
  progressIntervalMs: number;
  /** Cursors of /history pages. */
  history: HistoryPages;
}
