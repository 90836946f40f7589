/**
 * Questions only the API server asks: who the local owner is, whether any key is configured, which jobs wait at
 * start-up, and the links an API field follows (a turn's job, an image's turn and edits). Kept apart from the
 * aggregates' modules so that the data layer's main files stay the product's questions.
 */
import { and, asc, desc, eq, isNull, sql } from 'drizzle-orm';
import type { ClaimedJob } from './jobs.ts';
import type { Database } from './client.ts';
import { notFound } from './errors.ts';
import { guard } from './guard.ts';
import { checkId, newId } from './ids.ts';
import { summaryColumns, type ImageSummary } from './images.ts';
import { apiKeys, conversations, images, jobs, turns, users } from './schema/index.ts';
import type { User } from './users.ts';

/** Display name of the owner when the server makes one. */
export const OWNER_NAME = 'owner';

/**
 * The local owner: the user that requests act as on a loopback server without keys, and whom `dialect keys
 * create` makes keys for. It is the oldest user without a Discord id, made (named "owner") when none exists. An
 * advisory lock makes concurrent first calls agree on one user.
 */
export async function getOrCreateOwner(database: Database): Promise<User> {
  return guard(() =>
    database.db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(7244102)`);
      const [existing] = await tx
        .select()
        .from(users)
        .where(isNull(users.discordId))
        .orderBy(asc(users.createdAt), asc(users.id))
        .limit(1);
      const row = existing ?? (await tx.insert(users).values({ id: newId(), displayName: OWNER_NAME }).returning())[0]!;
      return { id: row.id, displayName: row.displayName, discordId: row.discordId, createdAt: row.createdAt };
    }),
  );
}

/** Whether any API key is configured (not revoked): then every request needs one, even on loopback. */
export async function hasActiveApiKeys(database: Database): Promise<boolean> {
  return guard(async () => {
    const [row] = await database.db.select({ id: apiKeys.id }).from(apiKeys).where(isNull(apiKeys.revokedAt)).limit(1);
    return row !== undefined;
  });
}

/** Every queued job, oldest first, with its owner: the runner's view of the queue after a start. */
export async function listQueuedJobs(database: Database): Promise<{ id: string; userId: string }[]> {
  return guard(() =>
    database.db
      .select({ id: jobs.id, userId: jobs.userId })
      .from(jobs)
      .where(eq(jobs.status, 'queued'))
      .orderBy(asc(jobs.createdAt), asc(jobs.id)),
  );
}

/** The user's images edited from this one, oldest first. */
export async function listImageEdits(database: Database, userId: string, imageId: string): Promise<ImageSummary[]> {
  const owner = checkId(userId, 'user');
  const id = checkId(imageId, 'image');
  return guard(() =>
    database.db
      .select(summaryColumns)
      .from(images)
      .where(and(eq(images.userId, owner), eq(images.parentImageId, id)))
      .orderBy(asc(images.createdAt), asc(images.id))
      .limit(100),
  );
}

/**
 * The newest turn of one of the user's conversations (what a new turn follows by default), or null for an empty
 * conversation; NOT_FOUND for an unknown conversation or another user's. One query, for the API's hot path.
 */
export async function getLatestTurnId(database: Database, userId: string, conversationId: string): Promise<string | null> {
  const owner = checkId(userId, 'user');
  const id = checkId(conversationId, 'conversation');
  return guard(async () => {
    const rows = await database.db
      .select({ conversationId: conversations.id, turnId: turns.id })
      .from(conversations)
      .leftJoin(turns, eq(turns.conversationId, conversations.id))
      .where(and(eq(conversations.id, id), eq(conversations.userId, owner)))
      .orderBy(desc(turns.createdAt), desc(turns.id))
      .limit(1);
    if (rows.length === 0) throw notFound('conversation');
    return rows[0]!.turnId;
  });
}

/**
 * Claims one queued job by id for `workerId` (claimNextJob takes the oldest instead): the server's fast path, which
 * starts the model on a request while its turn and job are being written, then claims exactly that job. Null when
 * the job is no longer queued (cancelled meanwhile, or claimed by another worker).
 */
export async function claimJob(
  database: Database,
  jobId: string,
  workerId: string,
  options: { leaseMs?: number } = {},
): Promise<ClaimedJob | null> {
  const id = checkId(jobId, 'job');
  const leaseMs = options.leaseMs ?? 300_000;
  return guard(() =>
    database.db.transaction(async (tx) => {
      const [row] = await tx
        .update(jobs)
        .set({
          status: 'running',
          attempts: sql`${jobs.attempts} + 1`,
          workerId,
          startedAt: sql`now()`,
          leaseExpiresAt: sql`now() + ${`${leaseMs} milliseconds`}::interval`,
        })
        .where(and(eq(jobs.id, id), eq(jobs.status, 'queued')))
        .returning();
      if (row === undefined) return null;
      const [turn] = await tx
        .update(turns)
        .set({ status: 'running', updatedAt: sql`now()` })
        .where(eq(turns.id, row.turnId))
        .returning({ conversationId: turns.conversationId, task: turns.task });
      return {
        id: row.id,
        turnId: row.turnId,
        status: row.status,
        attempts: row.attempts,
        maxAttempts: row.maxAttempts,
        errorCode: row.errorCode,
        errorMessage: row.errorMessage,
        createdAt: row.createdAt,
        startedAt: row.startedAt,
        finishedAt: row.finishedAt,
        userId: row.userId,
        conversationId: turn!.conversationId,
        task: turn!.task,
      };
    }),
  );
}
