/** Conversations and their tree of turns, with the images each turn read and wrote. */
import { and, asc, desc, eq, inArray, sql } from 'drizzle-orm';
import type { Database, Db } from './client.ts';
import { DbError, notFound } from './errors.ts';
import { checkText, clip, beforeCursor, guard, LIMITS, pageSize, toPage, type Page } from './guard.ts';
import { checkId, newId } from './ids.ts';
import { assertOwnImages, imageRow, insertImages, pruneUnlinkedImages, summaryColumns, type ImageSummary, type NewImage } from './images.ts';
import {
  conversations,
  images,
  jobs,
  turnImages,
  turns,
  TURN_ROLES,
  TURN_TASKS,
  type ConversationRow,
  type StageTimings,
  type TurnRole,
  type TurnRow,
  type TurnSettings,
  type TurnStatus,
  type TurnTask,
} from './schema/index.ts';

export interface Conversation {
  id: string;
  title: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface Turn {
  id: string;
  conversationId: string;
  /** The turn this one follows (null for a first turn). Siblings are rerolls; children are follow-ups. */
  parentId: string | null;
  role: TurnRole;
  task: TurnTask;
  prompt: string;
  answer: string | null;
  settings: TurnSettings;
  status: TurnStatus;
  errorCode: string | null;
  errorMessage: string | null;
  timings: StageTimings | null;
  modelName: string | null;
  modelVersion: string | null;
  createdAt: Date;
  updatedAt: Date;
  inputImages: ImageSummary[];
  outputImages: ImageSummary[];
}

const toConversation = (row: ConversationRow): Conversation => ({
  id: row.id,
  title: row.title,
  createdAt: row.createdAt,
  updatedAt: row.updatedAt,
});

function toTurn(row: TurnRow, links: Map<string, { input: ImageSummary[]; output: ImageSummary[] }>): Turn {
  const own = links.get(row.id);
  return {
    id: row.id,
    conversationId: row.conversationId,
    parentId: row.parentId,
    role: row.role,
    task: row.task,
    prompt: row.prompt,
    answer: row.answer,
    settings: row.settings,
    status: row.status,
    errorCode: row.errorCode,
    errorMessage: row.errorMessage,
    timings: row.timings,
    modelName: row.modelName,
    modelVersion: row.modelVersion,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    inputImages: own?.input ?? [],
    outputImages: own?.output ?? [],
  };
}

async function turnImageLinks(db: Db, turnIds: string[]) {
  const links = new Map<string, { input: ImageSummary[]; output: ImageSummary[] }>();
  if (turnIds.length === 0) return links;
  const rows = await db
    .select({ turnId: turnImages.turnId, role: turnImages.role, image: summaryColumns })
    .from(turnImages)
    .innerJoin(images, eq(images.id, turnImages.imageId))
    .where(inArray(turnImages.turnId, turnIds))
    .orderBy(asc(turnImages.turnId), asc(turnImages.role), asc(turnImages.position));
  for (const row of rows) {
    let entry = links.get(row.turnId);
    if (entry === undefined) links.set(row.turnId, (entry = { input: [], output: [] }));
    entry[row.role].push(row.image);
  }
  return links;
}

// --- conversations ----------------------------------------------------------------------------------------------

export async function createConversation(database: Database, userId: string, input: { title: string }): Promise<Conversation> {
  const owner = checkId(userId, 'user');
  checkText('title', input.title, { allowEmpty: true });
  return guard(async () => {
    const [row] = await database.db.insert(conversations).values({ id: newId(), userId: owner, title: input.title }).returning();
    return toConversation(row!);
  });
}

/** The acting user's conversations, newest first (by creation), `limit` (default 20, at most 100) a page. */
export async function listConversations(
  database: Database,
  userId: string,
  options: { limit?: number; cursor?: string } = {},
): Promise<Page<Conversation>> {
  const owner = checkId(userId, 'user');
  const limit = pageSize(options.limit);
  const before = beforeCursor(conversations.createdAt, conversations.id, options.cursor);
  return guard(async () => {
    const rows = await database.db
      .select()
      .from(conversations)
      .where(
        and(
          eq(conversations.userId, owner),
          before,
        ),
      )
      .orderBy(desc(conversations.createdAt), desc(conversations.id))
      .limit(limit + 1);
    return toPage(rows.map(toConversation), limit);
  });
}

/** A conversation with all its turns, oldest first; the tree is in each turn's `parentId`. */
export async function getConversation(
  database: Database,
  userId: string,
  conversationId: string,
): Promise<{ conversation: Conversation; turns: Turn[] }> {
  const owner = checkId(userId, 'user');
  const id = checkId(conversationId, 'conversation');
  return guard(async () => {
    const [row] = await database.db
      .select()
      .from(conversations)
      .where(and(eq(conversations.id, id), eq(conversations.userId, owner)));
    if (row === undefined) throw notFound('conversation');
    const turnRows = await database.db
      .select()
      .from(turns)
      .where(eq(turns.conversationId, id))
      .orderBy(asc(turns.createdAt), asc(turns.id));
    const links = await turnImageLinks(database.db, turnRows.map((turn) => turn.id));
    return { conversation: toConversation(row), turns: turnRows.map((turn) => toTurn(turn, links)) };
  });
}

export async function renameConversation(
  database: Database,
  userId: string,
  conversationId: string,
  title: string,
): Promise<Conversation> {
  const owner = checkId(userId, 'user');
  const id = checkId(conversationId, 'conversation');
  checkText('title', title, { allowEmpty: true });
  return guard(async () => {
    const [row] = await database.db
      .update(conversations)
      .set({ title, updatedAt: sql`now()` })
      .where(and(eq(conversations.id, id), eq(conversations.userId, owner)))
      .returning();
    if (row === undefined) throw notFound('conversation');
    return toConversation(row);
  });
}

/**
 * Deletes a conversation with its turns and jobs, and the images that no turn of another conversation uses;
 * one transaction, so a failure deletes nothing. Returns how many images went.
 */
export async function deleteConversation(
  database: Database,
  userId: string,
  conversationId: string,
): Promise<{ deletedImages: number }> {
  const owner = checkId(userId, 'user');
  const id = checkId(conversationId, 'conversation');
  return guard(() =>
    database.db.transaction(async (tx) => {
      const used = await tx
        .selectDistinct({ imageId: turnImages.imageId })
        .from(turnImages)
        .innerJoin(turns, eq(turns.id, turnImages.turnId))
        .where(and(eq(turns.conversationId, id), eq(turns.userId, owner)));
      const deleted = await tx
        .delete(conversations)
        .where(and(eq(conversations.id, id), eq(conversations.userId, owner)))
        .returning({ id: conversations.id });
      if (deleted.length === 0) throw notFound('conversation');
      return { deletedImages: await pruneUnlinkedImages(tx, owner, used.map((row) => row.imageId)) };
    }),
  );
}

// --- turns ------------------------------------------------------------------------------------------------------

/** An image a turn reads: one of the user's stored images, or a new one (an upload) stored with the turn. */
export type TurnImageInput = { imageId: string } | { image: NewImage };

/** What the model made of a turn: written by completeJob, or at once by addTurn for a turn recorded afterwards. */
export interface TurnResult {
  /** Defaults to 'succeeded'. */
  status?: 'succeeded' | 'failed';
  answer?: string | null;
  /** Output images; an edit's output defaults its `parentImageId` to the turn's first input image. */
  outputImages?: NewImage[];
  timings?: StageTimings | null;
  modelName: string;
  modelVersion: string;
  /** The seed the request actually ran with (the model reports it when none was given). */
  seed?: number;
  errorCode?: string | null;
  errorMessage?: string | null;
}

export interface NewTurn {
  conversationId: string;
  /** The turn this one follows: a follow-up is a child of the turn it answers, a reroll a sibling of the turn it
   * redoes (so it takes that turn's parent). Null or absent: a first turn. */
  parentId?: string | null;
  /** Defaults to 'user'. */
  role?: TurnRole;
  task: TurnTask;
  prompt: string;
  settings?: Omit<TurnSettings, 'v'>;
  inputImages?: TurnImageInput[];
  /** A turn that already ran: stored finished, with no job. Without it, the turn waits for a queued job. */
  result?: TurnResult;
  /** Attempts the job gets before a crash fails it for good. Defaults to 2. */
  maxAttempts?: number;
}

/**
 * Adds a turn to one of the acting user's conversations, with its input images and (unless `result` is given) a
 * queued job, in one transaction. Returns the turn and the job's id.
 */
export async function addTurn(
  database: Database,
  userId: string,
  input: NewTurn,
): Promise<{ turn: Turn; jobId: string | null }> {
  const owner = checkId(userId, 'user');
  const conversationId = checkId(input.conversationId, 'conversation');
  const parentId = input.parentId == null ? null : checkId(input.parentId, 'parent turn');
  const role = input.role ?? 'user';
  if (!TURN_ROLES.includes(role)) throw new DbError('INVALID_INPUT', `unknown role "${String(role)}"`, { field: 'role' });
  if (!TURN_TASKS.includes(input.task)) {
    throw new DbError('INVALID_INPUT', `unknown task "${String(input.task)}"`, { field: 'task' });
  }
  checkText('prompt', input.prompt, { allowEmpty: true });
  const settings = checkSettings(input.settings ?? {});
  const inputs = input.inputImages ?? [];
  if (inputs.length > LIMITS.imagesPerTurn) {
    throw new DbError('FIELD_TOO_LONG', `at most ${LIMITS.imagesPerTurn} input images`, { field: 'inputImages' });
  }
  const newInputs = inputs.map((entry) => ('image' in entry ? imageRow(owner, entry.image) : undefined));
  const inputIds = inputs.map((entry, index) =>
    'image' in entry ? newInputs[index]!.id! : checkId(entry.imageId, 'image'),
  );
  const turnId = newId();
  const result = input.result === undefined ? undefined : prepareResult(owner, input.task, input.result, inputIds[0]);
  const maxAttempts = input.maxAttempts ?? 2;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 10) {
    throw new DbError('INVALID_INPUT', 'maxAttempts must be an integer in [1, 10]', { field: 'maxAttempts' });
  }

  return guard(() =>
    database.db.transaction(async (tx) => {
      const [conversation] = await tx
        .select({ id: conversations.id })
        .from(conversations)
        .where(and(eq(conversations.id, conversationId), eq(conversations.userId, owner)))
        .for('update');
      if (conversation === undefined) throw notFound('conversation');
      if (parentId !== null) {
        const [parent] = await tx
          .select({ id: turns.id })
          .from(turns)
          .where(and(eq(turns.id, parentId), eq(turns.conversationId, conversationId), eq(turns.userId, owner)));
        if (parent === undefined) throw notFound('parent turn');
      }
      await assertOwnImages(
        tx,
        owner,
        inputs.flatMap((entry, index) => ('imageId' in entry ? [inputIds[index]!] : [])),
      );
      await insertImages(tx, owner, newInputs.filter((row) => row !== undefined));
      await tx.insert(turns).values({
        id: turnId,
        conversationId,
        userId: owner,
        parentId,
        role,
        task: input.task,
        prompt: input.prompt,
        settings: result?.seed === undefined ? settings : { ...settings, seed: result.seed },
        status: result === undefined ? 'pending' : result.status,
        answer: result?.answer ?? null,
        errorCode: result?.errorCode ?? null,
        errorMessage: result?.errorMessage ?? null,
        timings: result?.timings ?? null,
        modelName: result?.modelName ?? null,
        modelVersion: result?.modelVersion ?? null,
      });
      if (inputIds.length > 0) {
        await tx
          .insert(turnImages)
          .values(inputIds.map((imageId, position) => ({ turnId, imageId, role: 'input' as const, position })));
      }
      if (result !== undefined) await writeOutputImages(tx, owner, turnId, result.outputRows);
      let jobId: string | null = null;
      if (result === undefined) {
        jobId = newId();
        await tx.insert(jobs).values({ id: jobId, userId: owner, turnId, maxAttempts });
      }
      await tx.update(conversations).set({ updatedAt: sql`now()` }).where(eq(conversations.id, conversationId));
      return { turn: await loadTurn(tx, owner, turnId), jobId };
    }),
  );
}

/** One of the acting user's turns, with its images. */
export async function getTurn(database: Database, userId: string, turnId: string): Promise<Turn> {
  const owner = checkId(userId, 'user');
  const id = checkId(turnId, 'turn');
  return guard(() => loadTurn(database.db, owner, id));
}

/**
 * The turns from the root of the tree down to `turnId`, oldest first: the history to give the model when
 * continuing from that turn (the other branches are not part of it).
 */
export async function getTurnPath(database: Database, userId: string, turnId: string): Promise<Turn[]> {
  const owner = checkId(userId, 'user');
  const id = checkId(turnId, 'turn');
  return guard(async () => {
    const [target] = await database.db
      .select({ conversationId: turns.conversationId })
      .from(turns)
      .where(and(eq(turns.id, id), eq(turns.userId, owner)));
    if (target === undefined) throw notFound('turn');
    const rows = await database.db.select().from(turns).where(eq(turns.conversationId, target.conversationId));
    const byId = new Map(rows.map((row) => [row.id, row]));
    const path: TurnRow[] = [];
    for (let current = byId.get(id); current !== undefined; current = current.parentId === null ? undefined : byId.get(current.parentId)) {
      path.unshift(current);
      if (path.length > rows.length) throw new DbError('INTERNAL', 'turn tree has a cycle');
    }
    const links = await turnImageLinks(database.db, path.map((row) => row.id));
    return path.map((row) => toTurn(row, links));
  });
}

/** Deletes a turn and its descendants (their jobs too), and the images no other turn uses; one transaction. */
export async function deleteTurn(database: Database, userId: string, turnId: string): Promise<{ deletedImages: number }> {
  const owner = checkId(userId, 'user');
  const id = checkId(turnId, 'turn');
  return guard(() =>
    database.db.transaction(async (tx) => {
      const [target] = await tx
        .select({ conversationId: turns.conversationId })
        .from(turns)
        .where(and(eq(turns.id, id), eq(turns.userId, owner)));
      if (target === undefined) throw notFound('turn');
      // The images of the whole conversation are a superset of the subtree's; pruning keeps those still linked.
      const used = await tx
        .selectDistinct({ imageId: turnImages.imageId })
        .from(turnImages)
        .innerJoin(turns, eq(turns.id, turnImages.turnId))
        .where(eq(turns.conversationId, target.conversationId));
      await tx.delete(turns).where(eq(turns.id, id));
      return { deletedImages: await pruneUnlinkedImages(tx, owner, used.map((row) => row.imageId)) };
    }),
  );
}

export interface TurnHit {
  conversationId: string;
  conversationTitle: string;
  turnId: string;
  task: TurnTask;
  prompt: string;
  answer: string | null;
  createdAt: Date;
  id: string;
}

/**
 * Full-text search of the acting user's prompts and answers (every word of `query` must occur; "quoted phrases"
 * and -exclusions work as in web search), newest first, with cursor pagination.
 */
export async function searchTurns(
  database: Database,
  userId: string,
  query: string,
  options: { limit?: number; cursor?: string } = {},
): Promise<Page<TurnHit>> {
  const owner = checkId(userId, 'user');
  checkText('query', query);
  const limit = pageSize(options.limit);
  const before = beforeCursor(turns.createdAt, turns.id, options.cursor);
  return guard(async () => {
    const rows = await database.db
      .select({
        id: turns.id,
        turnId: turns.id,
        conversationId: turns.conversationId,
        conversationTitle: conversations.title,
        task: turns.task,
        prompt: turns.prompt,
        answer: turns.answer,
        createdAt: turns.createdAt,
      })
      .from(turns)
      .innerJoin(conversations, eq(conversations.id, turns.conversationId))
      .where(
        and(
          eq(turns.userId, owner),
          sql`${turns.searchVector} @@ websearch_to_tsquery('simple', ${query})`,
          before,
        ),
      )
      .orderBy(desc(turns.createdAt), desc(turns.id))
      .limit(limit + 1);
    return toPage(rows, limit);
  });
}

// --- shared with jobs and import --------------------------------------------------------------------------------

export async function loadTurn(db: Db, owner: string, turnId: string): Promise<Turn> {
  const [row] = await db
    .select()
    .from(turns)
    .where(and(eq(turns.id, turnId), eq(turns.userId, owner)));
  if (row === undefined) throw notFound('turn');
  return toTurn(row, await turnImageLinks(db, [row.id]));
}

export interface PreparedResult {
  status: 'succeeded' | 'failed';
  answer: string | null;
  timings: StageTimings | null;
  modelName: string;
  modelVersion: string;
  seed: number | undefined;
  errorCode: string | null;
  errorMessage: string | null;
  outputRows: (typeof images.$inferInsert)[];
}

/** Validates a result before the transaction that writes it. */
export function prepareResult(owner: string, task: TurnTask, result: TurnResult, firstInputId: string | undefined): PreparedResult {
  const status = result.status ?? 'succeeded';
  if (status !== 'succeeded' && status !== 'failed') {
    throw new DbError('INVALID_INPUT', `a result is succeeded or failed, not "${String(status)}"`, { field: 'status' });
  }
  if (result.answer != null) checkText('answer', result.answer, { allowEmpty: true });
  checkText('modelName', result.modelName);
  checkText('modelVersion', result.modelVersion);
  const outputs = result.outputImages ?? [];
  if (outputs.length > LIMITS.imagesPerTurn) {
    throw new DbError('FIELD_TOO_LONG', `at most ${LIMITS.imagesPerTurn} output images`, { field: 'outputImages' });
  }
  if (result.seed !== undefined && (!Number.isSafeInteger(result.seed) || result.seed < 0)) {
    throw new DbError('INVALID_INPUT', 'seed must be a non-negative safe integer', { field: 'seed' });
  }
  return {
    status,
    answer: result.answer ?? null,
    timings: checkTimings(result.timings ?? null),
    modelName: result.modelName,
    modelVersion: result.modelVersion,
    seed: result.seed,
    errorCode: clip(result.errorCode, LIMITS.errorCode),
    errorMessage: clip(result.errorMessage, LIMITS.errorMessage),
    outputRows: outputs.map((image) =>
      imageRow(owner, {
        ...image,
        parentImageId: image.parentImageId !== undefined ? image.parentImageId : task === 'edit' ? (firstInputId ?? null) : null,
      }),
    ),
  };
}

export async function writeOutputImages(tx: Db, owner: string, turnId: string, rows: (typeof images.$inferInsert)[]): Promise<void> {
  if (rows.length === 0) return;
  await insertImages(tx, owner, rows);
  await tx.insert(turnImages).values(rows.map((row, position) => ({ turnId, imageId: row.id!, role: 'output' as const, position })));
}

export function checkSettings(settings: Omit<TurnSettings, 'v'>): TurnSettings {
  const { seed, scale, sampling, detokSampling, selfCheck } = settings;
  if (selfCheck !== undefined && typeof selfCheck !== 'boolean') {
    throw new DbError('INVALID_INPUT', 'selfCheck must be true or false', { field: 'selfCheck' });
  }
  if (seed !== undefined && (!Number.isSafeInteger(seed) || seed < 0)) {
    throw new DbError('INVALID_INPUT', 'seed must be a non-negative safe integer', { field: 'seed' });
  }
  if (scale !== undefined && (!Number.isInteger(scale) || scale < 1 || scale > 16)) {
    throw new DbError('INVALID_INPUT', 'scale must be an integer in [1, 16]', { field: 'scale' });
  }
  for (const [field, value] of [
    ['sampling', sampling],
    ['detokSampling', detokSampling],
  ] as const) {
    if (value === undefined) continue;
    const entries = Object.entries(value);
    if (entries.length > 16 || entries.some(([key, number]) => key.length > 32 || typeof number !== 'number' || !Number.isFinite(number))) {
      throw new DbError('INVALID_INPUT', `${field} is at most 16 named finite numbers`, { field });
    }
  }
  return {
    v: 1,
    ...(seed === undefined ? {} : { seed }),
    ...(scale === undefined ? {} : { scale }),
    ...(sampling === undefined ? {} : { sampling }),
    ...(detokSampling === undefined ? {} : { detokSampling }),
    ...(selfCheck === undefined ? {} : { selfCheck }),
  };
}

function checkTimings(timings: StageTimings | null): StageTimings | null {
  if (timings === null) return null;
  const entries = Object.entries(timings);
  if (entries.length > 32 || entries.some(([key, value]) => key.length > 32 || typeof value !== 'number' || !Number.isFinite(value))) {
    throw new DbError('INVALID_INPUT', 'timings are at most 32 named finite numbers', { field: 'timings' });
  }
  return timings;
}

/** The job that runs (or ran) one of the acting user's turns; null for a turn recorded without one. */
export async function getTurnJobId(database: Database, userId: string, turnId: string): Promise<string | null> {
  const owner = checkId(userId, 'user');
  const id = checkId(turnId, 'turn');
  return guard(async () => {
    const [turn] = await database.db
      .select({ id: turns.id })
      .from(turns)
      .where(and(eq(turns.id, id), eq(turns.userId, owner)));
    if (turn === undefined) throw notFound('turn');
    const [job] = await database.db
      .select({ id: jobs.id })
      .from(jobs)
      .where(eq(jobs.turnId, id))
      .orderBy(desc(jobs.createdAt))
      .limit(1);
    return job?.id ?? null;
  });
}

/** The turn that produced an image of the acting user (for an upload, the first turn that read it), or null. */
export async function getImageTurnId(database: Database, userId: string, imageId: string): Promise<string | null> {
  const owner = checkId(userId, 'user');
  const id = checkId(imageId, 'image');
  return guard(async () => {
    const [image] = await database.db
      .select({ id: images.id })
      .from(images)
      .where(and(eq(images.id, id), eq(images.userId, owner)));
    if (image === undefined) throw notFound('image');
    const [link] = await database.db
      .select({ turnId: turnImages.turnId })
      .from(turnImages)
      .innerJoin(turns, eq(turns.id, turnImages.turnId))
      .where(eq(turnImages.imageId, id))
      .orderBy(desc(turnImages.role), asc(turns.createdAt))
      .limit(1);
    return link?.turnId ?? null;
  });
}
