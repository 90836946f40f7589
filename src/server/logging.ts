/** Structured JSON logs (pino): one line per event, with the request's operation, user and duration. */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'dialect' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Keys and Discord headers never reach a log line, whatever is logged by mistake.
      redact: { paths: ['req.headers.authorization', 'authorization', 'key', 'headers.authorization'], censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? process.stdout,
  );
}
