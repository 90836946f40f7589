/**
 * The server, composed: one model (loaded once, shared by every request), one database, the job runner, and the
 * API over HTTP (Apollo on express) and WebSocket (graphql-ws on the same port and path), with the image route,
 * health, readiness, metrics and the web page. `stop()` drains in order: refuse new work, let running jobs end,
 * close HTTP and WebSocket, release the model and the database.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { expressMiddleware } from '@as-integrations/express5';
import { makeExecutableSchema } from '@graphql-tools/schema';
import express, { type NextFunction, type Request, type Response } from 'express';
import { type ExecutionArgs, getOperationAST, GraphQLError, type GraphQLSchema, parse } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { type Database, openDatabase } from '../db/client.ts';
import { recoverInterruptedJobs } from '../db/jobs.ts';
import { isSmallCpuBundle, type Model, TarModel, ThreadedTarModel } from '../model/index.ts';
import { JUDGE_MODULE } from '../shapes/judge.ts';
import { Authenticator, credentialsFromHeaders, credentialsFromParams, type Principal } from './auth.ts';
import { ConfigError, isLoopback, type ServerConfig } from './config.ts';
import { type Context, Loaders, type Services } from './context.ts';
import { dataDirHolder, markDataDir, unmarkDataDir } from './data-dir-lock.ts';
import { ApiError, normaliseError } from './errors.ts';
import { resolvers } from './graphql/resolvers.ts';
import { imagesRoute, ImageUrlSigner } from './images-route.ts';
import { JobEvents } from './jobs/events.ts';
import { JobRunner } from './jobs/runner.ts';
import { operationRules, RateLimiter } from './limits.ts';
import { createLogger, type Logger } from './logging.ts';
import { ServerMetrics } from './metrics.ts';
import { TurnService } from './services/turns.ts';

export const SCHEMA_PATH = fileURLToPath(new URL('../../schema.graphql', import.meta.url));
const PLACEHOLDER_WEB = fileURLToPath(new URL('./web-placeholder/', import.meta.url));
const DEFAULT_WEB = fileURLToPath(new URL('../../web/dist/', import.meta.url));

export function buildSchema(): GraphQLSchema {
  return makeExecutableSchema<Context>({ typeDefs: readFileSync(SCHEMA_PATH, 'utf8'), resolvers: resolvers as never });
}

export interface StartOptions {
  /** An open database to use (not closed by `stop`); otherwise one is opened from the configuration. */
  database?: Database;
  /** A loaded model to use (not disposed by `stop`); otherwise the configured bundle is loaded. */
  model?: Model;
  logger?: Logger;
}

export interface DialectServer {
  /** `http://host:port` as bound (port 0 resolved). */
  url: string;
  config: ServerConfig;
  services: Services;
  metrics: ServerMetrics;
  apollo: ApolloServer<Context>;
  schema: GraphQLSchema;
  /** The context a request with these credentials would get (for in-process executeOperation tests). */
  contextFor(credentials: { authorization?: string; discordUser?: string; discordName?: string }): Promise<Context>;
  /** Graceful shutdown (idempotent). */
  stop(): Promise<void>;
}

export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<DialectServer> {
  const logger = options.logger ?? createLogger(config.logLevel);
  if (options.model === undefined && !existsSync(join(config.bundleDir, 'manifest.json'))) {
    throw new ConfigError([`DIALECT_MODEL: no model bundle at ${config.bundleDir} (set DIALECT_MODEL to a bundle folder)`]);
  }
  const ownsDatabase = options.database === undefined;
  const embedded = ownsDatabase && config.databaseUrl === undefined;
  if (embedded) {
    const holder = dataDirHolder(config.dataDir);
    if (holder !== null) {
      throw new ConfigError([
        `DIALECT_DATA_DIR: the server at ${holder.url} (pid ${holder.pid}) has ${config.dataDir} open; PGlite is one process's database`,
      ]);
    }
  }
  const database =
    options.database ??
    (await openDatabase({
      ...(config.databaseUrl === undefined ? {} : { url: config.databaseUrl }),
      dataDir: config.dataDir,
      pgliteWorker: config.pgliteWorker,
      onConnectionError: (error) => logger.warn({ err: error }, 'database connection lost'),
    }));
  const ownsModel = options.model === undefined;
  let model: Model;
  try {
    // PGlite belongs to this one process, so every running job there was left by a crash; on a PostgreSQL server
    // other servers may be running theirs, so only jobs whose lease ran out are taken (here and every lease period).
    const recovered = await recoverInterruptedJobs(database, { everyRunningJob: database.driver === 'pglite' });
    if (recovered.requeued.length + recovered.failed.length > 0) logger.warn(recovered, 'recovered jobs of an earlier run');
    const threaded = config.modelThread === 'auto' ? (await isSmallCpuBundle(config.bundleDir, config.provider)) !== true : config.modelThread;
    model =
      options.model ??
      (await (threaded ? ThreadedTarModel : TarModel).load({
        bundleDir: config.bundleDir,
        provider: config.provider,
        maxBatch: config.maxBatch,
        judgeModule: JUDGE_MODULE,
        ...(config.threads === undefined ? {} : { intraOpThreads: config.threads }),
      }));
  } catch (error) {
    if (ownsDatabase) await database.close();
    throw error;
  }
  const info = model.info();
  logger.info(
    {
      model: `${info.name} ${info.version}`,
      provider: info.provider,
      database: database.location,
      modelThread: model instanceof ThreadedTarModel,
      ...(embedded ? { pgliteWorker: config.pgliteWorker } : {}),
    },
    'model loaded',
  );

  const metrics = new ServerMetrics(model);
  const events = new JobEvents();
  const runner = new JobRunner(database, model, events, metrics, logger, { concurrency: config.concurrency });
  const rate = new RateLimiter(config.limits.ratePerMinute, config.limits.rateBurst);
  const turns = new TurnService(database, model, runner, events, config.limits, rate, metrics, runner.images);
  const signer = new ImageUrlSigner(config.urlSecret, config.imageUrlTtlSeconds);
  const services: Services = { database, model, runner, events, turns, signer, limits: config.limits };
  const auth = new Authenticator(database, isLoopback(config.host));
  const schema = buildSchema();
  const rules = operationRules(schema, config.limits, config.introspection);
  const requests = new RateLimiter(config.limits.requestsPerMinute, config.limits.requestBurst);
  /** Every operation, HTTP or WebSocket: who acts, and whether they may send one more now. */
  const admit = (principal: Principal): void => {
    const waitMs = requests.take(principal.rateKey);
    if (waitMs > 0) throw new ApiError('RATE_LIMITED', `too many requests; retry in ${Math.ceil(waitMs / 1000)} s`);
  };
  const contextFor = async (credentials: Parameters<DialectServer['contextFor']>[0]): Promise<Context> => {
    const principal = await auth.authenticate(credentials);
    admit(principal);
    return { principal, services, loaders: new Loaders(database, principal.user.id) };
  };
  const report = (errorId: string, error: unknown) => logger.error({ err: error, errorId }, 'unexpected error');

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  const httpServer: Server = createServer(app);
  const wsServer = new WebSocketServer({ noServer: true, maxPayload: Math.ceil((config.limits.maxUploadBytes * 4) / 3) + 65536 });
  let ready = false;
  let stopping: Promise<void> | undefined;

  const wsCleanup = useServer<Record<string, unknown> | undefined, { principal?: Principal }>(
    {
      schema,
      onConnect: async (ctx) => {
        try {
          const request = (ctx.extra as unknown as { request: IncomingMessage }).request;
          const fromParams = credentialsFromParams(ctx.connectionParams);
          const fromHeaders = credentialsFromHeaders((name) => request.headers[name]);
          ctx.extra.principal = await auth.authenticate({
            authorization: fromParams.authorization ?? fromHeaders.authorization,
            discordUser: fromParams.discordUser ?? fromHeaders.discordUser,
            discordName: fromParams.discordName ?? fromHeaders.discordName,
          });
          return true;
        } catch (error) {
          logger.info({ err: error instanceof ApiError ? error.message : error }, 'websocket connection refused');
          return false;
        }
      },
      onSubscribe: (ctx, _id, payload) => {
        let document;
        try {
          document = parse(payload.query);
        } catch (error) {
          return [new GraphQLError((error as Error).message, { extensions: { code: 'GRAPHQL_PARSE_FAILED' } })];
        }
        const errors = rules.validate(schema, document, payload.variables ?? undefined);
        if (errors.length > 0) return errors;
        const operation = getOperationAST(document, payload.operationName);
        if (operation === null || operation === undefined) {
          return [new GraphQLError('no operation to run (give operationName)', { extensions: { code: 'BAD_REQUEST' } })];
        }
        const principal = ctx.extra.principal;
        if (principal === undefined) return [new ApiError('UNAUTHENTICATED', 'not authenticated')];
        try {
          admit(principal);
        } catch (error) {
          return [error as ApiError];
        }
        logger.info(
          { transport: 'websocket', operation: payload.operationName ?? null, type: operation.operation, userId: principal.user.id },
          'graphql request',
        );
        const args: ExecutionArgs = {
          schema,
          document,
          operationName: payload.operationName ?? null,
          variableValues: payload.variables ?? null,
          contextValue: { principal, services, loaders: new Loaders(database, principal.user.id) } satisfies Context,
        };
        return args;
      },
      onNext: (_ctx, _id, _payload, _args, result) => {
        if (result.errors === undefined || result.errors.length === 0) return;
        return {
          ...result,
          errors: result.errors.map((error) => normaliseError(error.toJSON(), error, report)),
        };
      },
      onError: (_ctx, _id, _payload, errors) => errors.map((error) => normaliseError(error.toJSON(), error, report)),
    },
    wsServer,
  );
  wsServer.on('connection', (socket) => {
    metrics.wsConnections.inc();
    socket.once('close', () => metrics.wsConnections.dec());
  });
  httpServer.on('upgrade', (request, socket, head) => {
    const path = new URL(request.url ?? '/', 'http://x').pathname;
    if (path !== '/graphql' || !originAllowed(request.headers.origin, request.headers.host, config.allowedOrigins)) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      return;
    }
    if (stopping !== undefined) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n');
      return;
    }
    wsServer.handleUpgrade(request, socket, head, (ws) => wsServer.emit('connection', ws, request));
  });

  // The cost limit needs the variables (`first: $n` pages), which Apollo's validation rules never see.
  const costLimit: ApolloServerPlugin<Context> = {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, operation, request }) {
          if (operation === undefined) return; // Apollo refuses a document without the named operation itself
          const error = rules.costError(document, operation, request.variables);
          if (error !== undefined) {
            throw new GraphQLError(error.message, { extensions: { ...error.extensions, http: { status: 400 } } });
          }
        },
      };
    },
  };

  const observe: ApolloServerPlugin<Context> = {
    async requestDidStart({ request, contextValue }) {
      const start = performance.now();
      return {
        async willSendResponse({ response, operation, errors }) {
          const seconds = (performance.now() - start) / 1000;
          const type = operation?.operation ?? 'unknown';
          const failed = (errors?.length ?? 0) > 0 || (response.body.kind === 'single' && (response.body.singleResult.errors?.length ?? 0) > 0);
          metrics.httpRequests.observe({ type, outcome: failed ? 'error' : 'ok' }, seconds);
          logger.info(
            {
              operation: request.operationName ?? null,
              type,
              userId: contextValue?.principal?.user.id,
              ms: Math.round(seconds * 1000),
              ...(failed ? { errors: errors?.map((e) => e.extensions?.code ?? 'INTERNAL_SERVER_ERROR') } : {}),
            },
            'graphql request',
          );
        },
      };
    },
  };

  const apollo = new ApolloServer<Context>({
    schema,
    // Introspection (__schema) is refused by our own rule (rules.apollo) outside development, as over WebSocket.
    introspection: true,
    validationRules: rules.apollo,
    includeStacktraceInErrorResponses: false,
    formatError: (formatted, error) => normaliseError(formatted, error, report),
    stopOnTerminationSignals: false,
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer, stopGracePeriodMillis: 2000 }),
      { async serverWillStart() { return { async drainServer() { await wsCleanup.dispose(); } }; } },
      ApolloServerPluginLandingPageDisabled(),
      costLimit,
      observe,
    ],
  });
  await apollo.start();

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    if (!ready || stopping !== undefined) {
      res.status(503).json({ status: stopping === undefined ? 'starting' : 'stopping' });
      return;
    }
    try {
      await database.ping();
      res.json({ status: 'ready', queueDepth: runner.queueDepth });
    } catch {
      res.status(503).json({ status: 'database unavailable' });
    }
  });
  app.get('/metrics', async (_req, res) => {
    res.type('text/plain; version=0.0.4').send(await metrics.text());
  });
  app.get('/images/:id.png', imagesRoute({ database, model, signer, logger }));
  const bodyLimit = Math.ceil((config.limits.maxUploadBytes * 4) / 3) + 65536;
  app.use(
    '/graphql',
    (req: Request, res: Response, next: NextFunction) => {
      const origin = req.headers.origin;
      if (!originAllowed(origin, req.headers.host, config.allowedOrigins)) {
        res.status(403).json({ errors: [{ message: 'origin not allowed', extensions: { code: 'FORBIDDEN' } }] });
        return;
      }
      if (origin !== undefined && config.allowedOrigins.includes(origin)) {
        res.set('Access-Control-Allow-Origin', origin);
        res.set('Vary', 'Origin');
        res.set('Access-Control-Allow-Headers', 'authorization, content-type, x-dialect-discord-user, x-dialect-discord-name');
        res.set('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
        if (req.method === 'OPTIONS') {
          res.status(204).end();
          return;
        }
      }
      if (stopping !== undefined) {
        res.status(503).json({ errors: [{ message: 'the server is shutting down', extensions: { code: 'SERVICE_UNAVAILABLE' } }] });
        return;
      }
      next();
    },
    express.json({ limit: bodyLimit, type: ['application/json', 'application/graphql-response+json'] }),
    (error: unknown, _req: Request, res: Response, next: NextFunction) => {
      // Body parser errors: a body too large, malformed JSON.
      if (error === undefined || error === null) return next();
      const status = (error as { status?: number }).status ?? 400;
      res
        .status(status)
        .json({ errors: [{ message: status === 413 ? 'the request body is too large' : 'the request body is not valid JSON', extensions: { code: 'BAD_REQUEST' } }] });
    },
    expressMiddleware(apollo, {
      context: async ({ req }) => contextFor(credentialsFromHeaders((name) => req.headers[name])),
    }),
  );
  const webDir = config.webDir ?? (existsSync(DEFAULT_WEB) ? DEFAULT_WEB : PLACEHOLDER_WEB);
  app.use(express.static(webDir, { index: 'index.html', fallthrough: true }));
  app.use((_req, res) => {
    res.status(404).type('text/plain').send('not found');
  });

  await runner.start();
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.port, config.host, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  ready = true;
  const address = httpServer.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  if (embedded) markDataDir(config.dataDir, url);
  logger.info({ url: `${url}/graphql`, web: webDir, loopbackOwner: isLoopback(config.host) }, 'server listening');

  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      ready = false;
      logger.info('shutting down: draining jobs');
      turns.stopAccepting();
      await runner.drain(config.shutdownTimeoutMs);
      await apollo.stop();
      if (httpServer.listening) await new Promise<void>((resolve) => httpServer.close(() => resolve()));
      if (ownsModel) await model.dispose();
      if (ownsDatabase) await database.close();
      if (embedded) unmarkDataDir(config.dataDir);
      logger.info('stopped');
    })();
    return stopping;
  };

  return { url, config, services, metrics, apollo, schema, contextFor, stop };
}

/** Requests from browsers must come from the server's own origin or an allowed one; requests without Origin are not from a page. */
export function originAllowed(origin: string | undefined, host: string | undefined, allowed: readonly string[]): boolean {
  if (origin === undefined || origin === '') return true;
  if (allowed.includes(origin)) return true;
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}
