/** The bot's logs: JSON lines through pino (LOG_LEVEL), kept apart from the server's so the bot stays a plain client. */
import { pino, type DestinationStream, type Logger } from 'pino';

export type BotLogger = Logger;

export function createBotLogger(level = 'info', destination?: DestinationStream): BotLogger {
  const options = { level, base: { service: 'dialect-bot' }, timestamp: pino.stdTimeFunctions.isoTime };
  return destination === undefined ? pino(options) : pino(options, destination);
}
