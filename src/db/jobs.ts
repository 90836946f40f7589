/**
 * The job queue, in Postgres: a small table rather than pg-boss, because it must run on PGlite too and needs
 * only claim, lease, finish and recover. A worker claims the oldest queued job with `FOR UPDATE SKIP LOCKED`
 * (workers never wait on each other), holds a lease it renews while the model runs, and finishes the job and
 * its turn in one transaction. A job whose lease ran out, because its process died, is requeued by
 * recoverInterruptedJobs while it has attempts left, else failed with INTERRUPTED.
 *
 * The worker functions (claim, renew, complete, fail, recover) act for the system, not for a user: only the
 * server's worker calls them. The user-facing ones (getJob, listJobs, cancelJob) take the acting user.
 */
import { and, desc, eq, inArray, lt, or, sql } from 'drizzle-orm';
import type { Database, Db } from './client.ts';
import { prepareResult, writeOutputImages, type TurnResult } from './conversations.ts';
import { DbError, notFound } from './errors.ts';
import { clip, beforeCursor, guard, LIMITS, pageSize, toPage, type Page } from './guard.ts';
import { checkId } from './ids.ts';
import { jobs, turnImages, turns, type JobRow, type JobStatus, type TurnTask } from './schema/index.ts';

export interface Job {
  id: string;
  turnId: string;
  status: JobStatus;
  attempts: number;
  maxAttempts: number;
  errorCode: string | null;
  errorMessage: string | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

const toJob = (row: JobRow): Job => ({
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
});

/** What a worker needs to run a claimed job. */
export interface ClaimedJob extends Job {
  userId: string;
  conversationId: string;
  task: TurnTask;
}

/** Defaults to 300_000 (five minutes): a worker renews the lease more often than that while the model runs. */
export const DEFAULT_LEASE_MS = 300_000;

// --- the acting user's view -------------------------------------------------------------------------------------

export async function getJob(database: Database, userId: string, jobId: string): Promise<Job> {
  const owner = checkId(userId, 'user');
  const id = checkId(jobId, 'job');
  return guard(async () => {
    const [row] = await database.db
      .select()
      .from(jobs)
      .where(and(eq(jobs.id, id), eq(jobs.userId, owner)));
    if (row === undefined) throw notFound('job');
    return toJob(row);
  });
}

/** The acting user's jobs, newest first; `status` narrows to some states (the bot's "what is still running"). */
export async function listJobs(
  database: Database,
  userId: string,
  options: { limit?: number; cursor?: string; status?: JobStatus[] } = {},
): Promise<Page<Job>> {
  const owner = checkId(userId, 'user');
  const limit = pageSize(options.limit);
  const before = beforeCursor(jobs.createdAt, jobs.id, options.cursor);
  return guard(async () => {
    const rows = await database.db
      .select()
      .from(jobs)
      .where(
        and(
          eq(jobs.userId, owner),
          options.status === undefined ? undefined : inArray(jobs.status, options.status),
          before,
        ),
      )
      .orderBy(desc(jobs.createdAt), desc(jobs.id))
      .limit(limit + 1);
    return toPage(rows.map(toJob), limit);
  });
}

/**
 * Cancels a queued or running job of the acting user, and its turn. A running job's worker learns it when it
 * renews the lease or completes (INVALID_STATE) and should stop. A finished job is left as it is
 * (INVALID_STATE).
 */
export async function cancelJob(database: Database, userId: string, jobId: string): Promise<Job> {
  const owner = checkId(userId, 'user');
  const id = checkId(jobId, 'job');
  return guard(() =>
    database.db.transaction(async (tx) => {
      const [row] = await tx
        .select()
        .from(jobs)
        .where(and(eq(jobs.id, id), eq(jobs.userId, owner)))
        .for('update');
      if (row === undefined) throw notFound('job');
      if (row.status !== 'queued' && row.status !== 'running') {
        throw new DbError('INVALID_STATE', `the job is already ${row.status}`);
      }
      const [updated] = await tx
        .update(jobs)
        .set({ status: 'cancelled', finishedAt: sql`now()`, leaseExpiresAt: null })
        .where(eq(jobs.id, id))
        .returning();
      await tx
        .update(turns)
        .set({ status: 'cancelled', errorCode: 'CANCELLED', updatedAt: sql`now()` })
        .where(eq(turns.id, row.turnId));
      return toJob(updated!);
    }),
  );
}

// --- the worker's side ------------------------------------------------------------------------------------------

/**
 * Claims the oldest queued job for `workerId`, or returns null when none waits. Marks the job and its turn
 * running and counts the attempt.
 */
export async function claimNextJob(
  database: Database,
  workerId: string,
  options: { leaseMs?: number } = {},
): Promise<ClaimedJob | null> {
  const leaseMs = checkLease(options.leaseMs);
  checkWorker(workerId);
  // One statement (one round trip, atomic): pick the oldest queued row, skipping rows other workers hold, mark it
  // and its turn running, and return what the worker needs.
  return guard(async () => {
    const result = await database.db.execute(sql`
      with next as (
        select id from ${jobs} where status = 'queued' order by created_at, id limit 1 for update skip locked
      ), j as (
        update ${jobs} set status = 'running', attempts = ${jobs}.attempts + 1, worker_id = ${workerId}::text, started_at = now(),
          lease_expires_at = now() + ${`${leaseMs} milliseconds`}::interval
        from next where ${jobs}.id = next.id
        returning ${jobs}.*
      ), t as (
        update ${turns} set status = 'running', updated_at = now() from j where ${turns}.id = j.turn_id
        returning ${turns}.conversation_id, ${turns}.task
      )
      select j.*, t.conversation_id as turn_conversation_id, t.task as turn_task from j, t`);
    const [row] = ((result as { rows?: Record<string, unknown>[] }).rows ?? (result as unknown as Record<string, unknown>[]));
    if (row === undefined) return null;
    const at = (value: unknown): Date | null => (value == null ? null : value instanceof Date ? value : new Date(String(value)));
    return {
      id: String(row.id),
      turnId: String(row.turn_id),
      status: row.status as JobStatus,
      attempts: Number(row.attempts),
      maxAttempts: Number(row.max_attempts),
      errorCode: (row.error_code as string | null) ?? null,
      errorMessage: (row.error_message as string | null) ?? null,
      createdAt: at(row.created_at)!,
      startedAt: at(row.started_at),
      finishedAt: at(row.finished_at),
      userId: String(row.user_id),
      conversationId: String(row.turn_conversation_id),
      task: row.turn_task as TurnTask,
    };
  });
}

/** Extends the lease of a job this worker runs; INVALID_STATE when it is no longer the worker's (cancelled, recovered). */
export async function renewJobLease(database: Database, jobId: string, workerId: string, options: { leaseMs?: number } = {}): Promise<void> {
  const leaseMs = checkLease(options.leaseMs);
  const id = checkId(jobId, 'job');
  await guard(async () => {
    const updated = await database.db
      .update(jobs)
      .set({ leaseExpiresAt: sql`now() + ${`${leaseMs} milliseconds`}::interval` })
      .where(and(eq(jobs.id, id), eq(jobs.status, 'running'), eq(jobs.workerId, workerId)))
      .returning({ id: jobs.id });
    if (updated.length === 0) throw new DbError('INVALID_STATE', 'the job is no longer running for this worker');
  });
}

/**
 * Finishes a job this worker runs with the model's result: the turn gets its answer, output images, timings and
 * model version, the job succeeds (or fails, for a result with status 'failed'), all in one transaction.
 */
export async function completeJob(database: Database, jobId: string, workerId: string, result: TurnResult): Promise<Job> {
  const id = checkId(jobId, 'job');
  return guard(() =>
    database.db.transaction(async (tx) => {
      const row = await lockOwnRunningJob(tx, id, workerId);
      const [turn] = await tx.select().from(turns).where(eq(turns.id, row.turnId));
      const [firstInput] = await tx
        .select({ imageId: turnImages.imageId })
        .from(turnImages)
        .where(and(eq(turnImages.turnId, row.turnId), eq(turnImages.role, 'input'), eq(turnImages.position, 0)));
      const prepared = prepareResult(row.userId, turn!.task, result, firstInput?.imageId);
      await writeOutputImages(tx, row.userId, row.turnId, prepared.outputRows);
      await tx
        .update(turns)
        .set({
          status: prepared.status,
          answer: prepared.answer,
          timings: prepared.timings,
          modelName: prepared.modelName,
          modelVersion: prepared.modelVersion,
          errorCode: prepared.errorCode,
          errorMessage: prepared.errorMessage,
          settings: prepared.seed === undefined ? turn!.settings : { ...turn!.settings, seed: prepared.seed },
          updatedAt: sql`now()`,
        })
        .where(eq(turns.id, row.turnId));
      const [done] = await tx
        .update(jobs)
        .set({
          status: prepared.status,
          errorCode: prepared.errorCode,
          errorMessage: prepared.errorMessage,
          finishedAt: sql`now()`,
          leaseExpiresAt: null,
        })
        .where(eq(jobs.id, id))
        .returning();
      return toJob(done!);
    }),
  );
}

/**
 * Records that a job this worker ran failed without a result (the model threw). `retry` requeues it while
 * attempts remain (for transient faults); otherwise the job and its turn fail with `errorCode`.
 */
export async function failJob(
  database: Database,
  jobId: string,
  workerId: string,
  error: { code: string; message: string; retry?: boolean },
): Promise<Job> {
  const id = checkId(jobId, 'job');
  return guard(() =>
    database.db.transaction(async (tx) => {
      const row = await lockOwnRunningJob(tx, id, workerId);
      const requeue = error.retry === true && row.attempts < row.maxAttempts;
      const errorCode = clip(error.code, LIMITS.errorCode);
      const errorMessage = clip(error.message, LIMITS.errorMessage);
      const [done] = await tx
        .update(jobs)
        .set(
          requeue
            ? { status: 'queued', workerId: null, leaseExpiresAt: null, errorCode, errorMessage }
            : { status: 'failed', finishedAt: sql`now()`, leaseExpiresAt: null, errorCode, errorMessage },
        )
        .where(eq(jobs.id, id))
        .returning();
      await tx
        .update(turns)
        .set(requeue ? { status: 'pending', updatedAt: sql`now()` } : { status: 'failed', errorCode, errorMessage, updatedAt: sql`now()` })
        .where(eq(turns.id, row.turnId));
      return toJob(done!);
    }),
  );
}

/**
 * Finds running jobs whose worker is gone and requeues them (attempts left) or fails them with INTERRUPTED,
 * their turns alike. At start-up pass `everyRunningJob: true` when this process is the only worker (the default
 * single-process server, and always on PGlite): then every running job was left by a crash. Otherwise only jobs
 * whose lease ran out are taken.
 */
export async function recoverInterruptedJobs(
  database: Database,
  options: { everyRunningJob?: boolean } = {},
): Promise<{ requeued: string[]; failed: string[] }> {
  return guard(() =>
    database.db.transaction(async (tx) => {
      const stale = await tx
        .select()
        .from(jobs)
        .where(
          and(
            eq(jobs.status, 'running'),
            options.everyRunningJob ? undefined : or(lt(jobs.leaseExpiresAt, sql`now()`), sql`${jobs.leaseExpiresAt} is null`),
          ),
        )
        .for('update', { skipLocked: true });
      const requeued = stale.filter((row) => row.attempts < row.maxAttempts).map((row) => row.id);
      const failed = stale.filter((row) => row.attempts >= row.maxAttempts).map((row) => row.id);
      const message = 'the process running this job stopped before it finished';
      if (requeued.length > 0) {
        await tx
          .update(jobs)
          .set({ status: 'queued', workerId: null, leaseExpiresAt: null, errorCode: 'INTERRUPTED', errorMessage: message })
          .where(inArray(jobs.id, requeued));
        await tx
          .update(turns)
          .set({ status: 'pending', updatedAt: sql`now()` })
          .where(inArray(turns.id, turnsOf(stale, requeued)));
      }
      if (failed.length > 0) {
        await tx
          .update(jobs)
          .set({ status: 'failed', finishedAt: sql`now()`, leaseExpiresAt: null, errorCode: 'INTERRUPTED', errorMessage: message })
          .where(inArray(jobs.id, failed));
        await tx
          .update(turns)
          .set({ status: 'failed', errorCode: 'INTERRUPTED', errorMessage: message, updatedAt: sql`now()` })
          .where(inArray(turns.id, turnsOf(stale, failed)));
      }
      return { requeued, failed };
    }),
  );
}

function turnsOf(rows: JobRow[], ids: string[]): string[] {
  const wanted = new Set(ids);
  return rows.filter((row) => wanted.has(row.id)).map((row) => row.turnId);
}

async function lockOwnRunningJob(tx: Db, id: string, workerId: string): Promise<JobRow> {
  const [row] = await tx.select().from(jobs).where(eq(jobs.id, id)).for('update');
  if (row === undefined) throw notFound('job');
  if (row.status !== 'running' || row.workerId !== workerId) {
    throw new DbError('INVALID_STATE', `the job is ${row.status}${row.status === 'running' ? ' for another worker' : ''}`);
  }
  return row;
}

function checkLease(leaseMs: number | undefined): number {
  const value = leaseMs ?? DEFAULT_LEASE_MS;
  if (!Number.isInteger(value) || value < 1 || value > 86_400_000) {
    throw new DbError('INVALID_INPUT', 'leaseMs must be an integer in [1, 86400000]', { field: 'leaseMs' });
  }
  return value;
}

function checkWorker(workerId: string): void {
  if (typeof workerId !== 'string' || workerId === '' || workerId.length > 200) {
    throw new DbError('INVALID_INPUT', 'workerId must be 1 to 200 characters', { field: 'workerId' });
  }
}
