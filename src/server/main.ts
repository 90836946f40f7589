/** `npm start`: the server on its embedded defaults (the shipped model, PGlite), configured by environment variables. */
import { startServer } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';
import { createLogger } from './logging.ts';

async function main(): Promise<number> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`dialect server: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  let server;
  try {
    server = await startServer(config, { logger });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`dialect server: ${error.message}\n`);
      return 2;
    }
    logger.fatal({ err: error }, 'the server could not start');
    return 1;
  }
  const shutdown = (signal: string) => {
    logger.info({ signal }, 'signal received');
    server.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
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
    process.stderr.write(`dialect server: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
