/** `npm run bot`: the Discord bot as its own process, configured by environment variables (README "Discord bot"). */
import { createBot, explainLoginError } from './bot.ts';
import { BotConfigError, loadBotConfig } from './config.ts';
import { createBotLogger } from './logger.ts';

async function main(): Promise<number> {
  let config;
  try {
    config = loadBotConfig();
  } catch (error) {
    if (error instanceof BotConfigError) {
      process.stderr.write(`dialect bot: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const logger = createBotLogger(config.logLevel);
  // Never die on a stray rejection: log it and keep serving (handlers already answer their own errors).
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection'));
  const bot = createBot(config, logger);
  try {
    await bot.start();
  } catch (error) {
    logger.fatal({ err: error }, explainLoginError(error));
    await bot.stop().catch(() => undefined);
    return 1;
  }
  const shutdown = (signal: string) => {
    logger.info({ signal }, 'signal received');
    bot.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  return -1;
}

main().then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error: unknown) => {
    process.stderr.write(`dialect bot: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
