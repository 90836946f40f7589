/**
 * Resolvers: thin mappings from the schema to the services and the data layer. Every read is scoped to the acting
 * user (the data layer answers NOT_FOUND for other users' ids, which the API shows as null or a NOT_FOUND error).
 */
import { GraphQLError, GraphQLScalarType, Kind } from 'graphql';
import {
  type Conversation,
  deleteConversation,
  getImageTurnId,
  getTurnJobId,
  listConversations,
  renameConversation,
  searchTurns,
  type Turn as DbTurn,
} from '../../db/conversations.ts';
import { cursorOf } from '../../db/guard.ts';
import { listImages, type ImageSummary } from '../../db/images.ts';
import { cancelJob, getJob, type Job as DbJob } from '../../db/jobs.ts';
import { listImageEdits } from '../../db/server-queries.ts';
import type { Context } from '../context.ts';
import { ApiError, toUserError, UserFailure } from '../errors.ts';
import type { JobEvent } from '../jobs/events.ts';
import type { TurnOutcome } from '../services/turns.ts';
import type {
  JobStage,
  Resolvers,
  Task,
  TurnStatus,
  UserError,
  UserErrorCode,
} from './generated.ts';

const isNotFound = (error: unknown) => (error as { code?: unknown } | null)?.code === 'NOT_FOUND';

/** A read that answers null for ids the user cannot see. */
async function orNull<T>(load: () => Promise<T>): Promise<T | null> {
  try {
    return await load();
  } catch (error) {
    if (isNotFound(error) || (error as { code?: unknown } | null)?.code === 'INVALID_INPUT') return null;
    throw error;
  }
}

/** Runs a mutation body; expected failures become the payload's `errors`. */
async function payload<T extends object>(
  body: () => Promise<T>,
  empty: T,
): Promise<T & { errors: UserError[] }> {
  try {
    return { ...(await body()), errors: [] };
  } catch (error) {
    const userError = toUserError(error);
    if (userError === null) throw error;
    return { ...empty, errors: [userError] };
  }
}

const TASK: Record<DbTurn['task'], Task> = { understand: 'UNDERSTAND', generate: 'GENERATE', edit: 'EDIT' };
const STATUS: Record<string, TurnStatus> = {
  pending: 'QUEUED',
  queued: 'QUEUED',
  running: 'RUNNING',
  succeeded: 'SUCCEEDED',
  failed: 'FAILED',
  cancelled: 'CANCELLED',
};
const USER_CODES = new Set<UserErrorCode>([
  'INVALID_INPUT',
  'INVALID_IMAGE',
  'IMAGE_TOO_LARGE',
  'PROMPT_TOO_LONG',
  'NOT_FOUND',
  'QUEUE_FULL',
  'RATE_LIMITED',
  'CANCELLED',
  'MODEL_FAILED',
  'UNAVAILABLE',
]);

/** A stored failure as the API shows it; internal codes (INTERRUPTED, ...) read as MODEL_FAILED. */
function storedError(status: string, code: string | null, message: string | null): UserError | null {
  if (status === 'cancelled') return { code: 'CANCELLED', message: 'the job was cancelled', field: null };
  if (status !== 'failed') return null;
  const known = code !== null && USER_CODES.has(code as UserErrorCode);
  return {
    code: known ? (code as UserErrorCode) : 'MODEL_FAILED',
    message: known && message !== null ? message : code === 'INTERRUPTED' ? 'the server stopped while the job ran' : 'the model failed on this request',
    field: null,
  };
}

function stageOf(job: DbJob, live: JobEvent['progress'] | undefined): { stage: JobStage; done: number; total: number } {
  if (job.status === 'succeeded' || job.status === 'failed' || job.status === 'cancelled') return { stage: 'DONE', done: 1, total: 1 };
  if (live !== undefined) return live;
  return { stage: 'QUEUED', done: 0, total: 0 };
}

const iso = (date: Date | null): string | null => (date === null ? null : date.toISOString());

const DateTime = new GraphQLScalarType<Date | string, string>({
  name: 'DateTime',
  serialize: (value) => (value instanceof Date ? value.toISOString() : new Date(String(value)).toISOString()),
  parseValue: (value) => {
    if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) throw new GraphQLError('DateTime must be an ISO-8601 string');
    return value;
  },
  parseLiteral: (ast) => {
    if (ast.kind !== Kind.STRING || Number.isNaN(Date.parse(ast.value))) throw new GraphQLError('DateTime must be an ISO-8601 string');
    return ast.value;
  },
});

function pageArgs(ctx: Context, first: number | null | undefined, after: string | null | undefined) {
  const limit = first ?? 20;
  if (!Number.isInteger(limit) || limit < 1 || limit > ctx.services.limits.maxPageSize) {
    throw new GraphQLError(`first must be between 1 and ${ctx.services.limits.maxPageSize}`, {
      extensions: { code: 'BAD_USER_INPUT' },
    });
  }
  return { limit, ...(after == null ? {} : { cursor: after }) };
}

/** Cursor errors of the data layer are the caller's fault. */
async function paged<T>(load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if ((error as { code?: unknown }).code === 'INVALID_INPUT') {
      throw new GraphQLError('malformed cursor', { extensions: { code: 'BAD_USER_INPUT' } });
    }
    throw error;
  }
}

function edges<T extends { createdAt: Date; id: string }>(items: T[], nextCursor: string | null) {
  return {
    edges: items.map((node) => ({ node, cursor: cursorOf(node) })),
    pageInfo: { hasNextPage: nextCursor !== null, endCursor: nextCursor },
  };
}

async function turnPayload(
  ctx: Context,
  run: () => Promise<TurnOutcome>,
): Promise<{ turn: DbTurn | null; job: DbJob | null; errors: UserError[] }> {
  return payload<{ turn: DbTurn | null; job: DbJob | null }>(async () => {
    const outcome = await run();
    ctx.loaders.clear();
    // A waited-for request carries its turn and job as they ended (built from what the two writes returned).
    if (outcome.turn !== undefined) ctx.loaders.prime('t', outcome.turn.id, outcome.turn);
    if (outcome.job !== undefined) ctx.loaders.prime('j', outcome.job.id, outcome.job);
    const [turn, job] = await Promise.all([ctx.loaders.turn(outcome.turnId), outcome.job ?? ctx.loaders.job(outcome.jobId)]);
    return { turn, job };
  }, { turn: null, job: null });
}

export const resolvers: Resolvers = {
  DateTime,
  Query: {
    me: (_p, _a, ctx) => ctx.principal.user,
    model: (_p, _a, ctx) => {
      const info = ctx.services.model.info();
      return {
        name: info.name,
        version: info.version,
        scales: info.scales,
        defaultScale: info.defaultScale,
        understandingScale: info.understanding.scale,
        understandingViewScales: info.understanding.viewScales,
        editScale: info.editing.scale,
        selfCheck: info.selfCheck,
        imageSize: info.imageSize,
        experimental: info.experimental.map((t) => t.toUpperCase()).filter((t): t is Task => t === 'UNDERSTAND' || t === 'GENERATE' || t === 'EDIT'),
        defaults: {
          text: info.defaults.text,
          image: {
            temperature: info.defaults.image.temperature,
            topK: info.defaults.image.topK,
            topP: info.defaults.image.topP,
            cfgScale: info.defaults.detok.cfgScale,
            promptGuidance: info.defaults.image.cfgScale,
          },
        },
      };
    },
    limits: (_p, _a, ctx) => {
      const l = ctx.services.limits;
      return {
        maxUploadBytes: l.maxUploadBytes,
        maxUploadPixels: l.maxUploadPixels,
        maxPromptChars: l.maxPromptChars,
        maxPageSize: l.maxPageSize,
        ratePerMinute: l.ratePerMinute,
        rateBurst: l.rateBurst,
        maxActiveJobsPerUser: l.maxActiveJobsPerUser,
      };
    },
    conversations: async (_p, args, ctx) => {
      const page = await paged(() =>
        listConversations(ctx.services.database, ctx.principal.user.id, pageArgs(ctx, args.first, args.after)),
      );
      return edges(page.items, page.nextCursor);
    },
    conversation: async (_p, args, ctx) => (await orNull(() => ctx.loaders.conversation(args.id)))?.conversation ?? null,
    turn: (_p, args, ctx) => orNull(() => ctx.loaders.turn(args.id)),
    image: (_p, args, ctx) => orNull(() => ctx.loaders.image(args.id)),
    images: async (_p, args, ctx) => {
      const origin = args.origin == null ? undefined : (args.origin.toLowerCase() as 'upload' | 'generated' | 'edited');
      const page = await paged(() =>
        listImages(ctx.services.database, ctx.principal.user.id, {
          ...pageArgs(ctx, args.first, args.after),
          ...(origin === undefined ? {} : { origin }),
        }),
      );
      return edges(page.items, page.nextCursor);
    },
    search: async (_p, args, ctx) => {
      if (args.query.trim() === '' || args.query.length > 500) {
        throw new GraphQLError('query must be 1 to 500 characters', { extensions: { code: 'BAD_USER_INPUT' } });
      }
      const page = await paged(() =>
        searchTurns(ctx.services.database, ctx.principal.user.id, args.query, pageArgs(ctx, args.first, args.after)),
      );
      const turns = await Promise.all(page.items.map((hit) => ctx.loaders.turn(hit.turnId)));
      return edges(turns, page.nextCursor);
    },
    job: (_p, args, ctx) => orNull(() => ctx.loaders.job(args.id)),
  },
  Mutation: {
    understand: (_p, { input }, ctx) =>
      turnPayload(ctx, () =>
        ctx.services.turns.request(ctx.principal.user.id, ctx.principal.rateKey, {
          task: 'understand',
          prompt: input.prompt,
          image: input.image,
          conversationId: input.conversationId,
          parentTurnId: input.parentTurnId,
          scale: input.scale,
          seed: input.seed,
          textSampling: input.sampling,
          wait: input.wait,
        }),
      ),
    generate: (_p, { input }, ctx) =>
      turnPayload(ctx, () =>
        ctx.services.turns.request(ctx.principal.user.id, ctx.principal.rateKey, {
          task: 'generate',
          prompt: input.prompt,
          conversationId: input.conversationId,
          parentTurnId: input.parentTurnId,
          scale: input.scale,
          seed: input.seed,
          imageSampling: input.sampling,
          wait: input.wait,
        }),
      ),
    edit: (_p, { input }, ctx) =>
      turnPayload(ctx, () =>
        ctx.services.turns.request(ctx.principal.user.id, ctx.principal.rateKey, {
          task: 'edit',
          prompt: input.prompt,
          image: input.image,
          conversationId: input.conversationId,
          parentTurnId: input.parentTurnId,
          scale: input.scale,
          seed: input.seed,
          imageSampling: input.sampling,
          wait: input.wait,
        }),
      ),
    reroll: (_p, { input }, ctx) =>
      turnPayload(ctx, () => ctx.services.turns.reroll(ctx.principal.user.id, ctx.principal.rateKey, input)),
    cancelJob: (_p, args, ctx) =>
      payload<{ job: DbJob | null }>(async () => {
        const { database, runner } = ctx.services;
        const userId = ctx.principal.user.id;
        try {
          const job = await cancelJob(database, userId, args.id);
          runner.cancelled(job.id);
          return { job };
        } catch (error) {
          // Cancelling a finished job is a no-op that returns it.
          if ((error as { code?: unknown }).code === 'INVALID_STATE') return { job: await getJob(database, userId, args.id) };
          if (isNotFound(error)) throw new UserFailure('NOT_FOUND', 'no such job', ['id']);
          throw error;
        }
      }, { job: null }),
    renameConversation: (_p, { input }, ctx) =>
      payload<{ conversation: Conversation | null }>(async () => {
        const title = input.title.trim();
        if (title === '' || title.length > 200) throw new UserFailure('INVALID_INPUT', 'a title has 1 to 200 characters', ['input', 'title']);
        try {
          return { conversation: await renameConversation(ctx.services.database, ctx.principal.user.id, input.id, title) };
        } catch (error) {
          if (isNotFound(error)) throw new UserFailure('NOT_FOUND', 'no such conversation', ['input', 'id']);
          throw error;
        }
      }, { conversation: null }),
    deleteConversation: (_p, args, ctx) =>
      payload<{ deletedId: string | null }>(async () => {
        try {
          await deleteConversation(ctx.services.database, ctx.principal.user.id, args.id);
          return { deletedId: args.id };
        } catch (error) {
          if (isNotFound(error)) throw new UserFailure('NOT_FOUND', 'no such conversation', ['id']);
          throw error;
        }
      }, { deletedId: null }),
  },
  Subscription: {
    jobProgress: {
      subscribe: (_p, args, ctx) => jobStream(ctx, args.id),
      resolve: (job: DbJob) => job,
    },
  },
  User: {
    name: (user) => user.displayName,
    createdAt: (user) => user.createdAt.toISOString(),
  },
  Conversation: {
    createdAt: (c) => c.createdAt.toISOString(),
    updatedAt: (c) => c.updatedAt.toISOString(),
    turns: async (c, _a, ctx) => (await ctx.loaders.conversation(c.id)).turns,
  },
  Turn: {
    conversation: async (t, _a, ctx) => (await ctx.loaders.conversation(t.conversationId)).conversation,
    parent: (t, _a, ctx) => (t.parentId === null ? null : orNull(() => ctx.loaders.turn(t.parentId as string))),
    children: async (t, _a, ctx) => (await ctx.loaders.conversation(t.conversationId)).turns.filter((c) => c.parentId === t.id),
    task: (t) => TASK[t.task],
    inputImage: (t) => t.inputImages[0] ?? null,
    text: (t) => (t.task === 'understand' ? t.answer : null),
    image: (t) => (t.task === 'understand' ? null : (t.outputImages[0] ?? null)),
    status: (t) => STATUS[t.status] ?? 'FAILED',
    error: (t) => storedError(t.status, t.errorCode, t.errorMessage),
    settings: (t) => {
      const s = t.settings;
      return {
        seed: s.seed ?? 0,
        scale: s.scale ?? null,
        temperature: s.sampling?.temperature ?? null,
        topK: s.sampling?.topK ?? null,
        topP: s.sampling?.topP ?? null,
        repetitionPenalty: s.sampling?.repetitionPenalty ?? null,
        maxNewTokens: s.sampling?.maxNewTokens ?? null,
        cfgScale: s.detokSampling?.cfgScale ?? null,
        promptGuidance: s.sampling?.cfgScale ?? null,
        selfCheck: s.selfCheck ?? null,
      };
    },
    timings: (t) => {
      const x = t.timings;
      if (x === null) return null;
      const n = (key: string) => (typeof x[key] === 'number' ? (x[key] as number) : 0);
      return {
        queued: n('queued'),
        encode: n('encode'),
        prefill: n('prefill'),
        decode: n('decode'),
        decodeTokens: Math.round(n('decodeTokens')),
        detokenize: n('detokenize'),
        vqDecode: n('vqDecode'),
        total: n('total'),
      };
    },
    model: (t, _a, ctx) => {
      if (t.modelName !== null) return `${t.modelName} ${t.modelVersion ?? ''}`.trim();
      const info = ctx.services.model.info();
      return `${info.name} ${info.version}`;
    },
    job: async (t, _a, ctx) => {
      const id = await getTurnJobId(ctx.services.database, ctx.principal.user.id, t.id);
      return id === null ? null : orNull(() => ctx.loaders.job(id));
    },
    createdAt: (t) => t.createdAt.toISOString(),
  },
  Image: {
    grid: (image, _a, ctx) =>
      ctx.services.model.manifest.scales.find((s) => s.scale === image.scale)?.grid ?? Math.round(Math.sqrt(image.tokenCount)),
    tokens: async (image, _a, ctx) => ('tokens' in image ? (image as { tokens: number[] }).tokens : (await ctx.loaders.image(image.id)).tokens),
    url: (image, _a, ctx) => ctx.services.signer.url(ctx.principal.user.id, image.id),
    origin: (image) => image.origin.toUpperCase() as 'UPLOAD' | 'GENERATED' | 'EDITED',
    parent: (image, _a, ctx) => (image.parentImageId === null ? null : orNull(() => ctx.loaders.image(image.parentImageId as string))),
    children: (image, _a, ctx): Promise<ImageSummary[]> => listImageEdits(ctx.services.database, ctx.principal.user.id, image.id),
    turn: async (image, _a, ctx) => {
      const id = await getImageTurnId(ctx.services.database, ctx.principal.user.id, image.id);
      return id === null ? null : orNull(() => ctx.loaders.turn(id));
    },
    model: (image) => `${image.modelName} ${image.modelVersion}`,
    createdAt: (image) => image.createdAt.toISOString(),
  },
  Job: {
    status: (job) => STATUS[job.status] ?? 'FAILED',
    task: async (job, _a, ctx) => TASK[(await ctx.loaders.turn(job.turnId)).task],
    stage: (job, _a, ctx) => stageOf(job, ctx.services.events.progress(job.id)).stage,
    done: (job, _a, ctx) => stageOf(job, ctx.services.events.progress(job.id)).done,
    total: (job, _a, ctx) => stageOf(job, ctx.services.events.progress(job.id)).total,
    turn: (job, _a, ctx) => orNull(() => ctx.loaders.turn(job.turnId)),
    error: (job) => storedError(job.status, job.errorCode, job.errorMessage),
    createdAt: (job) => job.createdAt.toISOString(),
    startedAt: (job) => iso(job.startedAt),
    finishedAt: (job) => iso(job.finishedAt),
  },
};

/**
 * The subscription's events: the job's state at once, then one per progress event (the latest when the client is
 * slow), re-reading the row so status and timestamps are true; it completes after the job ends.
 */
async function* jobStream(ctx: Context, jobId: string): AsyncGenerator<DbJob> {
  const { database, events } = ctx.services;
  const userId = ctx.principal.user.id;
  // Listen before reading, so an end between the read and the listen is not missed.
  const stream = events.stream(jobId);
  try {
    let job: DbJob;
    try {
      job = await getJob(database, userId, jobId);
    } catch (error) {
      if (isNotFound(error)) throw new ApiError('NOT_FOUND', 'no such job');
      throw error;
    }
    yield job;
    if (job.status !== 'queued' && job.status !== 'running') return;
    for await (const event of stream) {
      // The row changes at the start (queued → running) and at the end; progress in between lives in the events, so
      // the row is read again only then, not on every step of every subscriber.
      if (event.terminal) job = event.job ?? (await getJob(database, userId, jobId));
      else if (job.status === 'queued') job = await getJob(database, userId, jobId);
      // Each event is a new state: fields below the job (its turn, image) are read afresh.
      ctx.loaders.clear();
      yield job;
      if (event.terminal || (job.status !== 'queued' && job.status !== 'running')) return;
    }
  } finally {
    await stream.return?.();
  }
}
