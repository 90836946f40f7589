/**
 * The server's configuration, read from environment variables and validated once at start. Every option has a
 * documented default (README "Configuration"); a bad value stops the start with a message naming the variable.
 */
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { DEFAULT_BUNDLE_DIR } from '../cli/model-options.ts';

export type Provider = 'cpu' | 'cuda' | 'webgpu';

/** Limits that protect the server; each over-limit request gets a typed error, never a crash. */
export interface Limits {
  /** Bytes of one uploaded image (after base64 decoding). Defaults to 10 MiB. */
  maxUploadBytes: number;
  /** Pixels (width × height) of one uploaded image, checked from its header before decoding. Defaults to 16,777,216 (4096²). */
  maxUploadPixels: number;
  /** Characters of a prompt. Defaults to 2,000. */
  maxPromptChars: number;
  /** Nesting depth of a GraphQL operation. Defaults to 12. */
  maxQueryDepth: number;
  /** Estimated cost of a GraphQL operation (fields, times the page size of lists). Defaults to 5,000. */
  maxQueryCost: number;
  /** Aliased fields in one operation. Defaults to 20. */
  maxAliases: number;
  /** Model requests (understand, generate, edit, reroll) a user may start per minute (a token bucket). Defaults to 30. */
  ratePerMinute: number;
  /** Burst of the token bucket. Defaults to 10. */
  rateBurst: number;
  /** GraphQL operations (any kind, HTTP and WebSocket) a user may send per minute. Defaults to 600. */
  requestsPerMinute: number;
  /** Burst of that rate. Defaults to 120. */
  requestBurst: number;
  /** Queued plus running jobs a user may have at once. Defaults to 4. */
  maxActiveJobsPerUser: number;
  /** Jobs waiting to run, over all users, before QUEUE_FULL. Defaults to 64. */
  maxQueue: number;
  /** Largest `first` of a connection. Defaults to 100. */
  maxPageSize: number;
}

export interface ServerConfig {
  /** Defaults to 127.0.0.1 (`HOST`). */
  host: string;
  /** Defaults to 4000 (`PORT`); 0 picks a free port. */
  port: number;
  /** `development` turns on introspection. Defaults to `production` (`NODE_ENV`). */
  development: boolean;
  /** Allow full introspection (`__schema`; `__type` is always allowed). Defaults to true in development, else false (`DIALECT_INTROSPECTION`=1|0). */
  introspection: boolean;
  /** A dialect-bundle/1 folder. Defaults to models/tar-shapes (`DIALECT_MODEL`). */
  bundleDir: string;
  /** Defaults to cpu (`DIALECT_PROVIDER`). */
  provider: Provider;
  /** onnxruntime intra-op threads (`DIALECT_THREADS`); unset: the runtime's default (1 for a small bundle). */
  threads: number | undefined;
  /** Rows decoded together (`DIALECT_MAX_BATCH`). Defaults to 16. */
  maxBatch: number;
  /** Jobs run at once by the job runner (the model batches them). Defaults to maxBatch (`DIALECT_CONCURRENCY`). */
  concurrency: number;
  /** PostgreSQL URL; the embedded PGlite database in `dataDir` when unset (`DATABASE_URL`). */
  databaseUrl: string | undefined;
  /** Where PGlite keeps its files (in `<dataDir>/pglite`). Defaults to `./data` (`DIALECT_DATA_DIR`). */
  dataDir: string;
  /**
   * Run PGlite in a worker thread, beside the model's thread (`DIALECT_PGLITE_WORKER`=1|0). Defaults to false: on
   * the 2-core machines measured (docs/performance.md) the worker's messages cost more than the overlap gained.
   */
  pgliteWorker: boolean;
  /**
   * Run the model in a worker thread of its own (`DIALECT_MODEL_THREAD`=1|0|auto). In a thread, inference blocks
   * that thread only, so HTTP, SQL and health checks are not held up by a long graph run; for a small model on two
   * cores the thread is slower (docs/performance.md, "The model thread"). Defaults to `auto`: a thread for bundles
   * of 128 MB or more and for GPU providers, the caller's thread for a small CPU bundle (the shipped one).
   */
  modelThread: boolean | 'auto';
  /** Secret that signs image URLs (`DIALECT_URL_SECRET`, 32+ characters); random per process when unset. */
  urlSecret: string | undefined;
  /** Lifetime of a signed image URL in seconds. Defaults to 86,400 (a day) (`DIALECT_IMAGE_URL_TTL`). */
  imageUrlTtlSeconds: number;
  /** Browser origins allowed to call the API and open WebSockets, besides the server's own. Defaults to none (`DIALECT_ALLOWED_ORIGINS`, comma-separated). */
  allowedOrigins: string[];
  /** Folder served at `/` (the web page). Defaults to web/dist when it exists, else a placeholder page (`DIALECT_WEB_DIR`). */
  webDir: string | undefined;
  /** How long shutdown waits for running jobs before cancelling them, in ms. Defaults to 30,000 (`DIALECT_SHUTDOWN_TIMEOUT_MS`). */
  shutdownTimeoutMs: number;
  /** pino level. Defaults to info (`LOG_LEVEL`). */
  logLevel: string;
  limits: Limits;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

export const DEFAULT_LIMITS: Limits = {
  maxUploadBytes: 10 * 1024 * 1024,
  maxUploadPixels: 4096 * 4096,
  maxPromptChars: 2000,
  maxQueryDepth: 12,
  maxQueryCost: 5000,
  maxAliases: 20,
  ratePerMinute: 30,
  rateBurst: 10,
  requestsPerMinute: 600,
  requestBurst: 120,
  maxActiveJobsPerUser: 4,
  maxQueue: 64,
  maxPageSize: 100,
};

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Reads and validates the configuration; throws ConfigError listing every problem at once. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const problems: string[] = [];
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const text = env[name];
    if (text === undefined || text.trim() === '') return fallback;
    if (!/^\d+$/.test(text.trim())) {
      problems.push(`${name} must be an integer, not "${text}"`);
      return fallback;
    }
    const value = Number(text);
    if (value < min || value > max) {
      problems.push(`${name} must be between ${min} and ${max}, not ${text}`);
      return fallback;
    }
    return value;
  };
  const str = (name: string): string | undefined => {
    const text = env[name]?.trim();
    return text === undefined || text === '' ? undefined : text;
  };

  const host = str('HOST') ?? '127.0.0.1';
  if (host !== 'localhost' && isIP(host) === 0 && !/^[a-z0-9.-]+$/i.test(host)) {
    problems.push(`HOST must be an IP address or a host name, not "${host}"`);
  }
  const port = int('PORT', 4000, 0, 65535);
  const nodeEnv = str('NODE_ENV') ?? 'production';
  const provider = (str('DIALECT_PROVIDER') ?? 'cpu') as Provider;
  if (!['cpu', 'cuda', 'webgpu'].includes(provider)) {
    problems.push(`DIALECT_PROVIDER must be cpu, cuda or webgpu, not "${provider}"`);
  }
  const threadsText = str('DIALECT_THREADS');
  const threads = threadsText === undefined ? undefined : int('DIALECT_THREADS', 1, 1, 256);
  const maxBatch = int('DIALECT_MAX_BATCH', 16, 1, 256);
  const concurrency = int('DIALECT_CONCURRENCY', maxBatch, 1, 1024);
  const databaseUrl = str('DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push('DATABASE_URL must start with postgres:// or postgresql://');
  }
  const urlSecret = str('DIALECT_URL_SECRET');
  if (urlSecret !== undefined && urlSecret.length < 32) {
    problems.push('DIALECT_URL_SECRET must be at least 32 characters');
  }
  const allowedOrigins = (str('DIALECT_ALLOWED_ORIGINS') ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o !== '');
  for (const origin of allowedOrigins) {
    if (!/^https?:\/\/[^/]+$/.test(origin)) problems.push(`DIALECT_ALLOWED_ORIGINS: "${origin}" is not an origin like https://example.com`);
  }
  const logLevel = str('LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, not "${logLevel}"`);
  const webDir = str('DIALECT_WEB_DIR');
  const pgliteWorkerText = str('DIALECT_PGLITE_WORKER');
  if (pgliteWorkerText !== undefined && !['0', '1', 'true', 'false'].includes(pgliteWorkerText)) {
    problems.push(`DIALECT_PGLITE_WORKER must be 1 or 0, not "${pgliteWorkerText}"`);
  }
  const modelThreadText = str('DIALECT_MODEL_THREAD');
  if (modelThreadText !== undefined && !['0', '1', 'true', 'false', 'auto'].includes(modelThreadText)) {
    problems.push(`DIALECT_MODEL_THREAD must be 1, 0 or auto, not "${modelThreadText}"`);
  }
  const introspectionText = str('DIALECT_INTROSPECTION');
  if (introspectionText !== undefined && !['0', '1', 'true', 'false'].includes(introspectionText)) {
    problems.push(`DIALECT_INTROSPECTION must be 1 or 0, not "${introspectionText}"`);
  }

  const d = DEFAULT_LIMITS;
  const limits: Limits = {
    maxUploadBytes: int('DIALECT_MAX_UPLOAD_BYTES', d.maxUploadBytes, 1024, 100 * 1024 * 1024),
    maxUploadPixels: int('DIALECT_MAX_UPLOAD_PIXELS', d.maxUploadPixels, 64, 16384 * 16384),
    maxPromptChars: int('DIALECT_MAX_PROMPT_CHARS', d.maxPromptChars, 1, 8000),
    maxQueryDepth: int('DIALECT_MAX_QUERY_DEPTH', d.maxQueryDepth, 3, 100),
    maxQueryCost: int('DIALECT_MAX_QUERY_COST', d.maxQueryCost, 10, 1_000_000),
    maxAliases: int('DIALECT_MAX_ALIASES', d.maxAliases, 0, 1000),
    ratePerMinute: int('DIALECT_RATE_PER_MINUTE', d.ratePerMinute, 1, 1_000_000),
    rateBurst: int('DIALECT_RATE_BURST', d.rateBurst, 1, 1_000_000),
    requestsPerMinute: int('DIALECT_REQUESTS_PER_MINUTE', d.requestsPerMinute, 1, 10_000_000),
    requestBurst: int('DIALECT_REQUEST_BURST', d.requestBurst, 1, 10_000_000),
    maxActiveJobsPerUser: int('DIALECT_MAX_JOBS_PER_USER', d.maxActiveJobsPerUser, 1, 10_000),
    maxQueue: int('DIALECT_MAX_QUEUE', d.maxQueue, 1, 100_000),
    maxPageSize: int('DIALECT_MAX_PAGE_SIZE', d.maxPageSize, 1, 1000),
  };

  const config: ServerConfig = {
    host,
    port,
    development: nodeEnv === 'development',
    introspection: introspectionText === undefined ? nodeEnv === 'development' : introspectionText === '1' || introspectionText === 'true',
    bundleDir: resolve(str('DIALECT_MODEL') ?? DEFAULT_BUNDLE_DIR),
    provider,
    threads,
    maxBatch,
    concurrency,
    databaseUrl,
    dataDir: resolve(str('DIALECT_DATA_DIR') ?? 'data'),
    pgliteWorker: pgliteWorkerText === '1' || pgliteWorkerText === 'true',
    modelThread: modelThreadText === undefined || modelThreadText === 'auto' ? 'auto' : modelThreadText === '1' || modelThreadText === 'true',
    urlSecret,
    imageUrlTtlSeconds: int('DIALECT_IMAGE_URL_TTL', 86_400, 60, 365 * 86_400),
    allowedOrigins,
    webDir: webDir === undefined ? undefined : resolve(webDir),
    shutdownTimeoutMs: int('DIALECT_SHUTDOWN_TIMEOUT_MS', 30_000, 0, 3_600_000),
    logLevel,
    limits,
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** True for addresses only this machine can reach: the server then lets unauthenticated requests act as the owner. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
