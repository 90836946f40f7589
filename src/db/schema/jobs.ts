/** The jobs aggregate: the queue of model work, kept in Postgres. */
import { sql } from 'drizzle-orm';
import { check, index, integer, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { id, timestampMs } from './columns.ts';
import { turns } from './conversations.ts';
import { users } from './users.ts';

export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/**
 * One piece of model work for one turn. Workers claim the oldest queued job with `FOR UPDATE SKIP LOCKED`; a
 * running job holds a lease that its worker renews; a job whose lease ran out (its process died) is found by
 * recoverInterruptedJobs and requeued while attempts remain, else failed.
 */
export const jobs = pgTable(
  'jobs',
  {
    id: id(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    turnId: uuid('turn_id')
      .notNull()
      .references(() => turns.id, { onDelete: 'cascade' }),
    status: text('status', { enum: JOB_STATUSES }).notNull().default('queued'),
    attempts: integer('attempts').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull().default(2),
    /** Which process holds the job while it runs. */
    workerId: text('worker_id'),
    leaseExpiresAt: timestampMs('lease_expires_at'),
    errorCode: text('error_code'),
    errorMessage: text('error_message'),
    createdAt: timestampMs('created_at').notNull().defaultNow(),
    startedAt: timestampMs('started_at'),
    finishedAt: timestampMs('finished_at'),
  },
  (t) => [
    // claimNextJob: the oldest queued job.
    index('jobs_queued_idx').on(t.createdAt, t.id).where(sql`${t.status} = 'queued'`),
    // recoverInterruptedJobs: running jobs whose lease ran out.
    index('jobs_running_idx').on(t.leaseExpiresAt).where(sql`${t.status} = 'running'`),
    // getTurnJob and the turn_id foreign key's cascade.
    index('jobs_turn_idx').on(t.turnId),
    // listJobs: a user's jobs newest first; also the user_id cascade.
    index('jobs_user_created_idx').on(t.userId, t.createdAt.desc(), t.id.desc()),
    check('jobs_status', sql`${t.status} in ('queued', 'running', 'succeeded', 'failed', 'cancelled')`),
    check('jobs_attempts', sql`${t.attempts} >= 0 and ${t.maxAttempts} between 1 and 10`),
    check('jobs_error_code_length', sql`char_length(${t.errorCode}) <= 64`),
    check('jobs_error_message_length', sql`char_length(${t.errorMessage}) <= 2000`),
  ],
);

export type JobRow = typeof jobs.$inferSelect;
