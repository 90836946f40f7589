/**
 * The API server's hot path in one statement each way. A model request writes its conversation (when new), turn,
 * input image link (and uploaded image) and job with `startTurn`, and the result with `finishJob`: each is a single
 * SQL statement (data-modifying CTEs), so it is one round trip and atomic on both drivers (a statement commits as
 * a whole or not at all: nothing half-written), where addTurn + claimJob + completeJob take ~25 statements.
 *
 * startTurn can write the job already running for a worker (the server's fast path, which starts the model while
 * the turn is written): such a job holds a lease like any claimed job, so a crash before it ends leaves it running
 * with no live worker, and recoverInterruptedJobs finds it at the next start.
 */
import { sql, type SQL } from 'drizzle-orm';
import type { Database } from './client.ts';
import { checkSettings, prepareResult, type Conversation, type Turn, type TurnResult } from './conversations.ts';
import { DbError, notFound } from './errors.ts';
import { checkText, guard } from './guard.ts';
import { checkId, newId } from './ids.ts';
import { imageRow, type ImageSummary, type NewImage } from './images.ts';
import type { ClaimedJob, Job } from './jobs.ts';
import type { TurnSettings, TurnTask } from './schema/index.ts';

export interface StartTurn {
  /** An existing conversation of the user, or a new one made in the same statement. */
  conversation: { id: string } | { title: string };
  parentId?: string | null;
  task: TurnTask;
  prompt: string;
  settings?: Omit<TurnSettings, 'v'>;
  /** The input image: one of the user's, or a new upload stored with the turn. */
  inputImage?: { imageId: string } | { image: NewImage };
  /** Write the job running for this worker (claimed), instead of queued. */
  claim?: { workerId: string; leaseMs: number };
  maxAttempts?: number;
}

export interface StartedTurn {
  conversation: Conversation | null;
  turn: Turn;
  job: ClaimedJob;
}

type Row = Record<string, unknown>;
const date = (value: unknown): Date => (value instanceof Date ? value : new Date(String(value)));
const rowsOf = (result: unknown): Row[] => ((result as { rows?: Row[] }).rows ?? (result as Row[]));

function summaryOf(row: Row, prefix: string): ImageSummary {
  return {
    id: String(row[`${prefix}id`]),
    origin: row[`${prefix}origin`] as ImageSummary['origin'],
    parentImageId: (row[`${prefix}parent_image_id`] as string | null) ?? null,
    width: Number(row[`${prefix}width`]),
    height: Number(row[`${prefix}height`]),
    scale: Number(row[`${prefix}scale`]),
    codebookSize: Number(row[`${prefix}codebook_size`]),
    tokenCount: Number(row[`${prefix}token_count`]),
    renderSeed: row[`${prefix}render_seed`] == null ? null : Number(row[`${prefix}render_seed`]),
    modelName: String(row[`${prefix}model_name`]),
    modelVersion: String(row[`${prefix}model_version`]),
    contentHash: String(row[`${prefix}content_hash`]),
    hasPng: Boolean(row[`${prefix}has_png`]),
    createdAt: date(row[`${prefix}created_at`]),
  };
}

const IMAGE_COLUMNS = sql.raw(
  'id, user_id, origin, parent_image_id, width, height, tokens, token_count, scale, views, codebook_size, render_seed, model_name, model_version, content_hash, png',
);
const SUMMARY = (alias: string, prefix: string) =>
  sql.raw(
    ['id', 'origin', 'parent_image_id', 'width', 'height', 'scale', 'codebook_size', 'token_count', 'render_seed', 'model_name', 'model_version', 'content_hash', 'created_at']
      .map((c) => `${alias}.${c} as ${prefix}${c}`)
      .concat(`${alias}.png is not null as ${prefix}has_png`)
      .join(', '),
  );

/** One image row as a SQL VALUES tuple, every value typed. */
function imageValues(row: ReturnType<typeof imageRow>, parent: SQL): SQL {
  return sql`(${row.id}::uuid, ${row.userId}::uuid, ${row.origin}::text, ${parent}, ${row.width}::int, ${row.height}::int, ${row.tokens}::bytea, ${row.tokenCount}::int, ${row.scale}::smallint, ${JSON.stringify(row.views ?? [])}::jsonb, ${row.codebookSize}::int, ${row.renderSeed ?? null}::bigint, ${row.modelName}::text, ${row.modelVersion}::text, ${row.contentHash}::text, ${row.png ?? null}::bytea)`;
}

/**
 * Adds a turn with its job in one statement (see the module's comment): the conversation (made when new; else it
 * must be the user's), the parent turn (must be in that conversation), the input image (the user's, or an upload
 * stored now), the turn, its input link, the job (queued, or running for `claim.workerId` with a lease) and the
 * conversation's updatedAt. NOT_FOUND for a conversation, parent turn or image the user does not have; nothing is
 * written then.
 */
export async function startTurn(database: Database, userId: string, input: StartTurn): Promise<StartedTurn> {
  const owner = checkId(userId, 'user');
  const isNew = 'title' in input.conversation;
  const conversationId = 'id' in input.conversation ? checkId(input.conversation.id, 'conversation') : newId();
  if ('title' in input.conversation) checkText('title', input.conversation.title, { allowEmpty: true });
  const parentId = input.parentId == null ? null : checkId(input.parentId, 'parent turn');
  if (!['understand', 'generate', 'edit'].includes(input.task)) {
    throw new DbError('INVALID_INPUT', `unknown task "${String(input.task)}"`, { field: 'task' });
  }
  checkText('prompt', input.prompt, { allowEmpty: true });
  const settings = checkSettings(input.settings ?? {});
  const upload = input.inputImage !== undefined && 'image' in input.inputImage ? imageRow(owner, input.inputImage.image) : undefined;
  const imageId =
    input.inputImage === undefined ? null : upload !== undefined ? (upload.id as string) : checkId((input.inputImage as { imageId: string }).imageId, 'image');
  const maxAttempts = input.maxAttempts ?? 2;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 10) {
    throw new DbError('INVALID_INPUT', 'maxAttempts must be an integer in [1, 10]', { field: 'maxAttempts' });
  }
  const claim = input.claim;
  if (claim !== undefined) {
    if (typeof claim.workerId !== 'string' || claim.workerId === '' || claim.workerId.length > 200) {
      throw new DbError('INVALID_INPUT', 'workerId must be 1 to 200 characters', { field: 'workerId' });
    }
    if (!Number.isInteger(claim.leaseMs) || claim.leaseMs < 1 || claim.leaseMs > 86_400_000) {
      throw new DbError('INVALID_INPUT', 'leaseMs must be an integer in [1, 86400000]', { field: 'leaseMs' });
    }
  }
  const turnId = newId();
  const jobId = newId();
  const title = 'title' in input.conversation ? input.conversation.title : null;

  // `ok` has one row exactly when every reference is the user's; every write selects from it (or from what was
  // written from it), so a failed check writes nothing.
  const parts: SQL[] = [];
  const checks: SQL[] = [];
  if (!isNew) {
    parts.push(sql`conv as (select id, title, created_at, updated_at from conversations where id = ${conversationId}::uuid and user_id = ${owner}::uuid)`);
    checks.push(sql`select 1 from conv`);
  }
  if (parentId !== null) {
    checks.push(sql`select 1 from turns where id = ${parentId}::uuid and conversation_id = ${conversationId}::uuid and user_id = ${owner}::uuid`);
  }
  if (imageId !== null && upload === undefined) {
    parts.push(sql`img as (select ${SUMMARY('i', 'img_')} from images i where i.id = ${imageId}::uuid and i.user_id = ${owner}::uuid)`);
    checks.push(sql`select 1 from img`);
  }
  parts.push(
    checks.length === 0
      ? sql`ok as (select 1 as ok)`
      : sql`ok as (select 1 as ok where ${sql.join(checks.map((c) => sql`exists (${c})`), sql` and `)})`,
  );
  parts.push(
    isNew
      ? sql`conv as (insert into conversations (id, user_id, title) select ${conversationId}::uuid, ${owner}::uuid, ${title}::text from ok returning id, title, created_at, updated_at)`
      : sql`touched as (update conversations set updated_at = now() where id = ${conversationId}::uuid and exists (select 1 from ok))`,
  );
  if (upload !== undefined) {
    parts.push(
      sql`img as (insert into images (${IMAGE_COLUMNS}) select v.* from (values ${imageValues(upload, sql`null::uuid`)}) v, ok returning ${SUMMARY('images', 'img_')})`,
    );
  }
  const status = claim === undefined ? 'pending' : 'running';
  parts.push(
    sql`t as (insert into turns (id, conversation_id, user_id, parent_id, role, task, prompt, settings, status)
      select ${turnId}::uuid, ${conversationId}::uuid, ${owner}::uuid, ${parentId}::uuid, 'user', ${input.task}::text, ${input.prompt}::text, ${JSON.stringify(settings)}::jsonb, ${status}::text from ok
      returning id, created_at, updated_at)`,
  );
  if (imageId !== null) {
    parts.push(sql`link as (insert into turn_images (turn_id, image_id, role, position) select t.id, ${imageId}::uuid, 'input', 0 from t)`);
  }
  parts.push(
    claim === undefined
      ? sql`j as (insert into jobs (id, user_id, turn_id, max_attempts) select ${jobId}::uuid, ${owner}::uuid, t.id, ${maxAttempts}::int from t returning *)`
      : sql`j as (insert into jobs (id, user_id, turn_id, max_attempts, status, attempts, worker_id, started_at, lease_expires_at)
          select ${jobId}::uuid, ${owner}::uuid, t.id, ${maxAttempts}::int, 'running', 1, ${claim.workerId}::text, now(), now() + ${`${claim.leaseMs} milliseconds`}::interval from t
          returning *)`,
  );
  const select = sql`select t.created_at as t_created_at, t.updated_at as t_updated_at, conv.title as c_title, conv.created_at as c_created_at, conv.updated_at as c_updated_at,
      j.status as j_status, j.attempts as j_attempts, j.max_attempts as j_max_attempts, j.created_at as j_created_at, j.started_at as j_started_at
      ${imageId === null ? sql`` : sql`, img.*`}
    from t, j, conv${imageId === null ? sql`` : sql`, img`}`;
  const statement = sql`with ${sql.join(parts, sql`, `)} ${select}`;

  return guard(async () => {
    const [row] = rowsOf(await database.db.execute(statement));
    if (row === undefined) {
      // Which reference failed (only on this error path): read, nothing was written.
      const own = rowsOf(
        await database.db.execute(sql`select
          exists (select 1 from conversations where id = ${conversationId}::uuid and user_id = ${owner}::uuid) as conv,
          exists (select 1 from turns where id = ${parentId}::uuid and conversation_id = ${conversationId}::uuid and user_id = ${owner}::uuid) as parent`),
      )[0]!;
      if (!isNew && !own.conv) throw notFound('conversation');
      if (parentId !== null && !own.parent) throw notFound('parent turn');
      throw notFound('image');
    }
    const createdAt = date(row.t_created_at);
    const updatedAt = date(row.t_updated_at);
    const inputImages = imageId === null ? [] : [summaryOf(row, 'img_')];
    const turn: Turn = {
      id: turnId,
      conversationId,
      parentId,
      role: 'user',
      task: input.task,
      prompt: input.prompt,
      answer: null,
      settings,
      status,
      errorCode: null,
      errorMessage: null,
      timings: null,
      modelName: null,
      modelVersion: null,
      createdAt,
      updatedAt,
      inputImages,
      outputImages: [],
    };
    const job: ClaimedJob = {
      id: jobId,
      turnId,
      status: row.j_status as Job['status'],
      attempts: Number(row.j_attempts),
      maxAttempts: Number(row.j_max_attempts),
      errorCode: null,
      errorMessage: null,
      createdAt: date(row.j_created_at),
      startedAt: row.j_started_at == null ? null : date(row.j_started_at),
      finishedAt: null,
      userId: owner,
      conversationId,
      task: input.task,
    };
    const conversation = isNew
      ? { id: conversationId, title: String(row.c_title), createdAt: date(row.c_created_at), updatedAt: date(row.c_updated_at) }
      : null;
    return { conversation, turn, job };
  });
}

/** What finishJob wrote: the job as it ended and the turn's new fields, enough to show the turn without a read. */
export interface FinishedJob {
  job: Job;
  turn: Pick<Turn, 'status' | 'answer' | 'settings' | 'timings' | 'modelName' | 'modelVersion' | 'errorCode' | 'errorMessage' | 'updatedAt' | 'outputImages'>;
}

/**
 * completeJob in one statement: a job this worker runs gets the model's result on its turn (answer, output images
 * with their tokens and PNG cache, timings, model version, seed) and ends, atomically. An edit's output image
 * defaults its parent to the turn's first input image. INVALID_STATE when the job is no longer running for this
 * worker (cancelled, recovered), NOT_FOUND when there is no such job; nothing is written then.
 */
export async function finishJob(
  database: Database,
  jobId: string,
  workerId: string,
  job: { userId: string; task: TurnTask },
  result: TurnResult,
): Promise<FinishedJob> {
  const id = checkId(jobId, 'job');
  const owner = checkId(job.userId, 'user');
  const prepared = prepareResult(owner, job.task, result, undefined);
  const explicitParent = (result.outputImages ?? []).map((image) => image.parentImageId !== undefined);
  const seedPatch = prepared.seed === undefined ? null : JSON.stringify({ seed: prepared.seed });
  const rows = prepared.outputRows;
  const explicitIds = rows.map((row, index) => (explicitParent[index] ? row.parentImageId : null)).filter((p): p is string => p != null);
  // An explicit parent must be one of the user's images (insertImages' rule); else nothing is written.
  const parentsOk =
    explicitIds.length === 0
      ? sql`true`
      : sql`(select count(*) from images where user_id = ${owner}::uuid and id in (${sql.join(explicitIds.map((p) => sql`${p}::uuid`), sql`, `)})) = ${new Set(explicitIds).size}`;
  const parts: SQL[] = [
    sql`j as (update jobs set status = ${prepared.status}::text, error_code = ${prepared.errorCode}::text, error_message = ${prepared.errorMessage}::text,
        finished_at = now(), lease_expires_at = null
      where id = ${id}::uuid and status = 'running' and worker_id = ${workerId}::text and user_id = ${owner}::uuid and ${parentsOk} returning *)`,
    sql`t as (update turns set status = ${prepared.status}::text, answer = ${prepared.answer}::text, timings = ${prepared.timings === null ? null : JSON.stringify(prepared.timings)}::jsonb,
        model_name = ${prepared.modelName}::text, model_version = ${prepared.modelVersion}::text, error_code = ${prepared.errorCode}::text,
        error_message = ${prepared.errorMessage}::text, settings = turns.settings || coalesce(${seedPatch}::jsonb, '{}'::jsonb), updated_at = now()
      from j where turns.id = j.turn_id returning turns.settings, turns.updated_at)`,
  ];
  if (rows.length > 0) {
    const firstInput = sql`(select image_id from turn_images ti, j where ti.turn_id = j.turn_id and ti.role = 'input' and ti.position = 0)`;
    const values = rows.map((row, index) =>
      imageValues(row, explicitParent[index] || job.task !== 'edit' ? sql`${row.parentImageId ?? null}::uuid` : sql`${firstInput}`),
    );
    parts.push(
      sql`o as (insert into images (${IMAGE_COLUMNS}) select v.* from (values ${sql.join(values, sql`, `)}) v, j returning ${SUMMARY('images', 'o_')})`,
      sql`ol as (insert into turn_images (turn_id, image_id, role, position) select j.turn_id, v.image_id, 'output', v.position from j,
        (values ${sql.join(rows.map((row, position) => sql`(${row.id}::uuid, ${position}::smallint)`), sql`, `)}) v (image_id, position))`,
    );
  }
  const statement = sql`with ${sql.join(parts, sql`, `)}
    select j.*, t.settings as t_settings, t.updated_at as t_updated_at
      ${rows.length > 0 ? sql`, (select coalesce(json_agg(row_to_json(o)), '[]'::json) from o) as outputs` : sql``}
    from j, t`;
  return guard(async () => {
    const [row] = rowsOf(await database.db.execute(statement));
    if (row === undefined) {
      const [current] = rowsOf(await database.db.execute(sql`select status, worker_id from jobs where id = ${id}::uuid and user_id = ${owner}::uuid`));
      if (current === undefined) throw notFound('job');
      if (current.status === 'running' && current.worker_id === workerId) {
        throw new DbError('INVALID_INPUT', 'an output image names a parent image the user does not have', { field: 'parentImageId' });
      }
      throw new DbError('INVALID_STATE', `the job is ${String(current.status)}${current.status === 'running' ? ' for another worker' : ''}`);
    }
    const outputs = ((row.outputs as Row[] | string | undefined) ?? []) as Row[] | string;
    const outputRows = typeof outputs === 'string' ? (JSON.parse(outputs) as Row[]) : outputs;
    const byId = new Map(outputRows.map((o) => [String(o.o_id), summaryOf(o, 'o_')]));
    const settings = typeof row.t_settings === 'string' ? (JSON.parse(row.t_settings) as TurnSettings) : (row.t_settings as TurnSettings);
    return {
      job: {
        id: String(row.id),
        turnId: String(row.turn_id),
        status: row.status as Job['status'],
        attempts: Number(row.attempts),
        maxAttempts: Number(row.max_attempts),
        errorCode: (row.error_code as string | null) ?? null,
        errorMessage: (row.error_message as string | null) ?? null,
        createdAt: date(row.created_at),
        startedAt: row.started_at == null ? null : date(row.started_at),
        finishedAt: row.finished_at == null ? null : date(row.finished_at),
      },
      turn: {
        status: prepared.status,
        answer: prepared.answer,
        settings,
        timings: prepared.timings,
        modelName: prepared.modelName,
        modelVersion: prepared.modelVersion,
        errorCode: prepared.errorCode,
        errorMessage: prepared.errorMessage,
        updatedAt: date(row.t_updated_at),
        outputImages: rows.map((r) => byId.get(r.id as string)!).filter((s) => s !== undefined),
      },
    };
  });
}

