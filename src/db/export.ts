/**
 * Export and import of history as one JSON document: conversations with their turns, and every image those
 * turns use, with its tokens (the truth) and its PNG in base64 (null when the cache is empty and no renderer was
 * given). Import restores a document into a user in one transaction: all of it or nothing.
 *
 * Ids: by default an import keeps the document's ids, so importing the same file twice changes nothing the
 * second time (rows already there with the same owner are skipped), and ids that belong to another user are
 * refused with CONFLICT. `newIds: true` gives every row a fresh id instead, to copy history into another user or
 * next to the original; each such import makes another copy.
 */
import { and, asc, eq, inArray } from 'drizzle-orm';
import type { Database, Db } from './client.ts';
import { DbError, notFound } from './errors.ts';
import { checkText, clip, guard, LIMITS } from './guard.ts';
import { checkId, isId, newId } from './ids.ts';
import type { Turn } from './conversations.ts';
import { imageRow, toImage } from './images.ts';
import {
  conversations,
  images,
  turnImages,
  turns,
  users,
  IMAGE_ORIGINS,
  TURN_ROLES,
  TURN_STATUSES,
  TURN_TASKS,
  type ImageOrigin,
  type ImageView,
  type StageTimings,
  type TurnSettings,
} from './schema/index.ts';

export const EXPORT_FORMAT = 'dialect-export';
export const EXPORT_VERSION = 1;

export interface ExportedImage {
  id: string;
  origin: ImageOrigin;
  parentImageId: string | null;
  width: number;
  height: number;
  scale: number;
  codebookSize: number;
  tokens: number[];
  /** The image's tokens at other scales (an upload's views); absent in exports made before views existed. */
  views: ImageView[];
  renderSeed: number | null;
  modelName: string;
  modelVersion: string;
  contentHash: string;
  createdAt: string;
  /** PNG bytes in base64; null when the cache was empty and the export was made without rendering. */
  png: string | null;
}

/** A turn as the export file holds it: the data layer's Turn with ISO dates and its images by id. */
export interface ExportedTurn
  extends Omit<Turn, 'conversationId' | 'createdAt' | 'updatedAt' | 'inputImages' | 'outputImages'> {
  createdAt: string;
  updatedAt: string;
  inputImageIds: string[];
  outputImageIds: string[];
}

export interface ExportedConversation {
  id: string;
  title: string;
  createdAt: string;
  updatedAt: string;
  turns: ExportedTurn[];
}

export interface DialectExport {
  format: typeof EXPORT_FORMAT;
  version: typeof EXPORT_VERSION;
  exportedAt: string;
  /** The owner of the exported history. */
  user: { id: string; displayName: string; discordId: string | null; createdAt: string };
  conversations: ExportedConversation[];
  images: ExportedImage[];
}

/** Renders an image whose PNG cache is empty (the CLI passes the model's `renderImage`). */
export type RenderPng = (image: { tokens: number[]; scale: number; seed: number | undefined }) => Promise<Buffer>;

export interface ExportOptions {
  /** Export this one conversation of the user; absent: all of the user's conversations. */
  conversationId?: string;
  /** Fills missing PNGs; without it, images with an empty cache are exported with `png: null`. */
  renderPng?: RenderPng;
}

/** Exports the acting user's history (one conversation, or all of it). */
export async function exportHistory(database: Database, userId: string, options: ExportOptions = {}): Promise<DialectExport> {
  const owner = checkId(userId, 'user');
  const only = options.conversationId === undefined ? undefined : checkId(options.conversationId, 'conversation');
  const document = await guard(async () => {
    const [user] = await database.db.select().from(users).where(eq(users.id, owner));
    if (user === undefined) throw notFound('user');
    const conversationRows = await database.db
      .select()
      .from(conversations)
      .where(and(eq(conversations.userId, owner), only === undefined ? undefined : eq(conversations.id, only)))
      .orderBy(asc(conversations.createdAt), asc(conversations.id));
    if (only !== undefined && conversationRows.length === 0) throw notFound('conversation');
    const conversationIds = conversationRows.map((row) => row.id);
    const turnRows =
      conversationIds.length === 0
        ? []
        : await database.db
            .select()
            .from(turns)
            .where(and(eq(turns.userId, owner), inArray(turns.conversationId, conversationIds)))
            .orderBy(asc(turns.createdAt), asc(turns.id));
    const linkRows =
      turnRows.length === 0
        ? []
        : await database.db
            .select()
            .from(turnImages)
            .where(inArray(turnImages.turnId, turnRows.map((row) => row.id)))
            .orderBy(asc(turnImages.turnId), asc(turnImages.role), asc(turnImages.position));
    const imageIds = [...new Set(linkRows.map((row) => row.imageId))];
    const imageRows =
      imageIds.length === 0
        ? []
        : await database.db
            .select()
            .from(images)
            .where(and(eq(images.userId, owner), inArray(images.id, imageIds)))
            .orderBy(asc(images.createdAt), asc(images.id));
    const exportedImages: ExportedImage[] = imageRows.map((row) => {
      const image = toImage(row);
      return {
        id: image.id,
        origin: image.origin,
        // A parent outside the export is left out, so the document stands on its own.
        parentImageId: image.parentImageId !== null && imageIds.includes(image.parentImageId) ? image.parentImageId : null,
        width: image.width,
        height: image.height,
        scale: image.scale,
        codebookSize: image.codebookSize,
        tokens: image.tokens,
        views: image.views,
        renderSeed: image.renderSeed,
        modelName: image.modelName,
        modelVersion: image.modelVersion,
        contentHash: image.contentHash,
        createdAt: image.createdAt.toISOString(),
        png: row.png === null ? null : row.png.toString('base64'),
      };
    });
    const exportedTurns = new Map<string, ExportedTurn[]>();
    for (const row of turnRows) {
      const list = exportedTurns.get(row.conversationId) ?? [];
      list.push({
        id: row.id,
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
        createdAt: row.createdAt.toISOString(),
        updatedAt: row.updatedAt.toISOString(),
        inputImageIds: linkRows.filter((link) => link.turnId === row.id && link.role === 'input').map((link) => link.imageId),
        outputImageIds: linkRows.filter((link) => link.turnId === row.id && link.role === 'output').map((link) => link.imageId),
      });
      exportedTurns.set(row.conversationId, list);
    }
    return {
      format: EXPORT_FORMAT,
      version: EXPORT_VERSION,
      exportedAt: new Date().toISOString(),
      user: { id: user.id, displayName: user.displayName, discordId: user.discordId, createdAt: user.createdAt.toISOString() },
      conversations: conversationRows.map((row) => ({
        id: row.id,
        title: row.title,
        createdAt: row.createdAt.toISOString(),
        updatedAt: row.updatedAt.toISOString(),
        turns: exportedTurns.get(row.id) ?? [],
      })),
      images: exportedImages,
    } satisfies DialectExport;
  });
  if (options.renderPng !== undefined) {
    for (const image of document.images) {
      if (image.png !== null) continue;
      const png = await options.renderPng({ tokens: image.tokens, scale: image.scale, seed: image.renderSeed ?? undefined });
      image.png = png.toString('base64');
    }
  }
  return document;
}

export interface ImportOptions {
  /** The user to restore into. Absent: the document's own user, made (with its id) when it does not exist. */
  userId?: string;
  /** Give every row a fresh id (a copy) instead of keeping the document's ids (a restore). Defaults to false. */
  newIds?: boolean;
}

export interface ImportSummary {
  userId: string;
  conversations: { imported: number; skipped: number };
  turns: number;
  images: { imported: number; skipped: number };
  /** Old id → new id, when `newIds` was set. */
  idMap: Record<string, string>;
}

/** Restores an export. Validates the whole document before writing; one transaction. */
export async function importHistory(database: Database, document: unknown, options: ImportOptions = {}): Promise<ImportSummary> {
  const data = parseExport(document);
  const targetUser = options.userId === undefined ? data.user.id : checkId(options.userId, 'user');
  const idMap = new Map<string, string>();
  const mapId = (id: string): string => {
    if (!options.newIds) return id;
    let mapped = idMap.get(id);
    if (mapped === undefined) idMap.set(id, (mapped = newId()));
    return mapped;
  };

  // Build every row first: a malformed document fails before any write.
  const imageRows = orderParentsFirst(data.images, (image) => image.parentImageId).map((image) => {
    const row = imageRow(
      targetUser,
      {
        origin: image.origin,
        tokens: image.tokens,
        scale: image.scale,
        views: image.views,
        codebookSize: image.codebookSize,
        width: image.width,
        height: image.height,
        modelName: image.modelName,
        modelVersion: image.modelVersion,
        renderSeed: image.renderSeed,
        parentImageId: image.parentImageId === null ? null : mapId(image.parentImageId),
        png: image.png === null ? null : Buffer.from(image.png, 'base64'),
      },
      mapId(image.id),
    );
    if (row.contentHash !== image.contentHash) {
      throw new DbError('INVALID_INPUT', `image ${image.id}: tokens do not match its content hash`, { field: 'images' });
    }
    return { ...row, createdAt: new Date(image.createdAt) };
  });

  return guard(() =>
    database.db.transaction(async (tx) => {
      await ensureUser(tx, targetUser, data, options.userId === undefined);
      const summary: ImportSummary = {
        userId: targetUser,
        conversations: { imported: 0, skipped: 0 },
        turns: 0,
        images: { imported: 0, skipped: 0 },
        idMap: {},
      };
      const existingImages = await ownedIds(tx, images, imageRows.map((row) => row.id!), targetUser);
      for (const row of imageRows) {
        if (existingImages.has(row.id!)) {
          summary.images.skipped += 1;
          continue;
        }
        await tx.insert(images).values(row);
        summary.images.imported += 1;
      }
      const existingConversations = await ownedIds(tx, conversations, data.conversations.map((c) => mapId(c.id)), targetUser);
      for (const conversation of data.conversations) {
        const conversationId = mapId(conversation.id);
        if (existingConversations.has(conversationId)) {
          summary.conversations.skipped += 1;
          continue;
        }
        await tx.insert(conversations).values({
          id: conversationId,
          userId: targetUser,
          title: conversation.title,
          createdAt: new Date(conversation.createdAt),
          updatedAt: new Date(conversation.updatedAt),
        });
        for (const turn of orderParentsFirst(conversation.turns, (t) => t.parentId)) {
          const turnId = mapId(turn.id);
          // A turn that was waiting or running when exported has no job here: it is closed as interrupted.
          const unfinished = turn.status === 'pending' || turn.status === 'running';
          await tx.insert(turns).values({
            id: turnId,
            conversationId,
            userId: targetUser,
            parentId: turn.parentId === null ? null : mapId(turn.parentId),
            role: turn.role,
            task: turn.task,
            prompt: turn.prompt,
            answer: turn.answer,
            settings: turn.settings,
            status: unfinished ? 'failed' : turn.status,
            errorCode: unfinished ? 'INTERRUPTED' : turn.errorCode,
            errorMessage: turn.errorMessage,
            timings: turn.timings,
            modelName: turn.modelName,
            modelVersion: turn.modelVersion,
            createdAt: new Date(turn.createdAt),
            updatedAt: new Date(turn.updatedAt),
          });
          const links = [
            ...turn.inputImageIds.map((id, position) => ({ turnId, imageId: mapId(id), role: 'input' as const, position })),
            ...turn.outputImageIds.map((id, position) => ({ turnId, imageId: mapId(id), role: 'output' as const, position })),
          ];
          if (links.length > 0) await tx.insert(turnImages).values(links);
          summary.turns += 1;
        }
        summary.conversations.imported += 1;
      }
      summary.idMap = Object.fromEntries(idMap);
      return summary;
    }),
  );
}

async function ensureUser(tx: Db, targetUser: string, data: DialectExport, restoreOwner: boolean): Promise<void> {
  const [user] = await tx.select({ id: users.id }).from(users).where(eq(users.id, targetUser));
  if (user !== undefined) return;
  if (!restoreOwner) throw notFound('user');
  await tx.insert(users).values({
    id: data.user.id,
    displayName: data.user.displayName,
    discordId: data.user.discordId,
    createdAt: new Date(data.user.createdAt),
  });
}

/** Which of `ids` exist in `table` for this owner; CONFLICT when one exists for another owner. */
async function ownedIds(tx: Db, table: typeof images | typeof conversations, ids: string[], owner: string): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await tx.select({ id: table.id, userId: table.userId }).from(table).where(inArray(table.id, ids));
  if (rows.some((row) => row.userId !== owner)) {
    throw new DbError('CONFLICT', 'the export holds ids that another user owns here; import it with new ids');
  }
  return new Set(rows.map((row) => row.id));
}

/** Sorts rows so that a row's parent (when it is in the list) comes before it; refuses cycles. */
function orderParentsFirst<T extends { id: string }>(rows: T[], parentOf: (row: T) => string | null): T[] {
  const byId = new Map(rows.map((row) => [row.id, row]));
  const ordered: T[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (row: T) => {
    const seen = state.get(row.id);
    if (seen === 'done') return;
    if (seen === 'visiting') throw new DbError('INVALID_INPUT', `cycle through ${row.id}`);
    state.set(row.id, 'visiting');
    const parentId = parentOf(row);
    const parent = parentId === null ? undefined : byId.get(parentId);
    if (parent !== undefined) visit(parent);
    state.set(row.id, 'done');
    ordered.push(row);
  };
  rows.forEach(visit);
  return ordered;
}

// --- validation of a document from outside ----------------------------------------------------------------------

function fail(path: string, what: string): never {
  throw new DbError('INVALID_INPUT', `export ${path}: ${what}`, { field: path });
}

function object(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path, 'expected an object');
  return value as Record<string, unknown>;
}

function list(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) fail(path, 'expected a list');
  return value;
}

function text(value: unknown, path: string, max: number, nullable = false): string {
  if (nullable && value === null) return value as unknown as string;
  if (typeof value !== 'string') fail(path, 'expected a string');
  if (value.length > max) throw new DbError('FIELD_TOO_LONG', `export ${path}: longer than ${max}`, { field: path });
  return value;
}

function id(value: unknown, path: string, nullable = false): string {
  if (nullable && value === null) return value as unknown as string;
  if (!isId(value)) fail(path, 'expected a uuid');
  return value.toLowerCase();
}

function date(value: unknown, path: string): string {
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) fail(path, 'expected an ISO date');
  return value;
}

function integer(value: unknown, path: string, nullable = false): number {
  if (nullable && value === null) return value as unknown as number;
  if (!Number.isSafeInteger(value)) fail(path, 'expected an integer');
  return value as number;
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], path: string): T {
  if (!allowed.includes(value as T)) fail(path, `expected one of ${allowed.join(', ')}`);
  return value as T;
}

function numbers(value: unknown, path: string, nullable: boolean): Record<string, number> | null {
  if (nullable && value === null) return null;
  const record = object(value, path);
  for (const [key, number] of Object.entries(record)) {
    if (typeof number !== 'number' || !Number.isFinite(number)) fail(`${path}.${key}`, 'expected a number');
  }
  return record as Record<string, number>;
}

export function parseExport(document: unknown): DialectExport {
  const root = object(document, '');
  if (root.format !== EXPORT_FORMAT) fail('format', `expected "${EXPORT_FORMAT}"`);
  if (root.version !== EXPORT_VERSION) fail('version', `this Dialect reads version ${EXPORT_VERSION}`);
  const user = object(root.user, 'user');
  const parsedUser = {
    id: id(user.id, 'user.id'),
    displayName: checkText('displayName', text(user.displayName, 'user.displayName', LIMITS.displayName)),
    discordId: text(user.discordId, 'user.discordId', LIMITS.discordId, true),
    createdAt: date(user.createdAt, 'user.createdAt'),
  };
  const parsedImages = list(root.images, 'images').map((value, index): ExportedImage => {
    const path = `images[${index}]`;
    const image = object(value, path);
    const tokens = list(image.tokens, `${path}.tokens`).map((token, at) => integer(token, `${path}.tokens[${at}]`));
    return {
      id: id(image.id, `${path}.id`),
      origin: oneOf(image.origin, IMAGE_ORIGINS, `${path}.origin`),
      parentImageId: id(image.parentImageId, `${path}.parentImageId`, true),
      width: integer(image.width, `${path}.width`),
      height: integer(image.height, `${path}.height`),
      scale: integer(image.scale, `${path}.scale`),
      codebookSize: integer(image.codebookSize, `${path}.codebookSize`),
      tokens,
      views: list(image.views ?? [], `${path}.views`).map((view, at) => {
        const entry = object(view, `${path}.views[${at}]`);
        return {
          scale: integer(entry.scale, `${path}.views[${at}].scale`),
          tokens: list(entry.tokens, `${path}.views[${at}].tokens`).map((token, k) => integer(token, `${path}.views[${at}].tokens[${k}]`)),
        };
      }),
      renderSeed: integer(image.renderSeed ?? null, `${path}.renderSeed`, true),
      modelName: text(image.modelName, `${path}.modelName`, LIMITS.modelName),
      modelVersion: text(image.modelVersion, `${path}.modelVersion`, LIMITS.modelVersion),
      contentHash: text(image.contentHash, `${path}.contentHash`, 64),
      createdAt: date(image.createdAt, `${path}.createdAt`),
      png: image.png === null || image.png === undefined ? null : text(image.png, `${path}.png`, Math.ceil(LIMITS.pngBytes / 3) * 4),
    };
  });
  const imageIds = new Set(parsedImages.map((image) => image.id));
  if (imageIds.size !== parsedImages.length) fail('images', 'duplicate ids');
  const turnIds = new Set<string>();
  const parsedConversations = list(root.conversations, 'conversations').map((value, index): ExportedConversation => {
    const path = `conversations[${index}]`;
    const conversation = object(value, path);
    const ownTurns = list(conversation.turns, `${path}.turns`).map((turnValue, at): ExportedTurn => {
      const turnPath = `${path}.turns[${at}]`;
      const turn = object(turnValue, turnPath);
      const imageList = (key: string) =>
        list(turn[key], `${turnPath}.${key}`).map((imageId, position) => {
          const parsed = id(imageId, `${turnPath}.${key}[${position}]`);
          if (!imageIds.has(parsed)) fail(`${turnPath}.${key}[${position}]`, 'not among the exported images');
          return parsed;
        });
      const settings = object(turn.settings, `${turnPath}.settings`);
      if (settings.v !== 1) fail(`${turnPath}.settings.v`, 'expected 1');
      const parsed: ExportedTurn = {
        id: id(turn.id, `${turnPath}.id`),
        parentId: id(turn.parentId, `${turnPath}.parentId`, true),
        role: oneOf(turn.role, TURN_ROLES, `${turnPath}.role`),
        task: oneOf(turn.task, TURN_TASKS, `${turnPath}.task`),
        prompt: text(turn.prompt, `${turnPath}.prompt`, LIMITS.prompt),
        answer: text(turn.answer, `${turnPath}.answer`, LIMITS.answer, true),
        settings: settings as unknown as TurnSettings,
        status: oneOf(turn.status, TURN_STATUSES, `${turnPath}.status`),
        errorCode: text(turn.errorCode, `${turnPath}.errorCode`, LIMITS.errorCode, true),
        errorMessage: clip(text(turn.errorMessage, `${turnPath}.errorMessage`, 100_000, true), LIMITS.errorMessage),
        timings: numbers(turn.timings, `${turnPath}.timings`, true) as StageTimings | null,
        modelName: text(turn.modelName, `${turnPath}.modelName`, LIMITS.modelName, true),
        modelVersion: text(turn.modelVersion, `${turnPath}.modelVersion`, LIMITS.modelVersion, true),
        createdAt: date(turn.createdAt, `${turnPath}.createdAt`),
        updatedAt: date(turn.updatedAt, `${turnPath}.updatedAt`),
        inputImageIds: imageList('inputImageIds'),
        outputImageIds: imageList('outputImageIds'),
      };
      if (turnIds.has(parsed.id)) fail(`${turnPath}.id`, 'duplicate id');
      turnIds.add(parsed.id);
      return parsed;
    });
    const own = new Set(ownTurns.map((turn) => turn.id));
    for (const turn of ownTurns) {
      if (turn.parentId !== null && !own.has(turn.parentId)) fail(`${path}.turns`, `parent ${turn.parentId} is not in the conversation`);
    }
    return {
      id: id(conversation.id, `${path}.id`),
      title: text(conversation.title, `${path}.title`, LIMITS.title),
      createdAt: date(conversation.createdAt, `${path}.createdAt`),
      updatedAt: date(conversation.updatedAt, `${path}.updatedAt`),
      turns: ownTurns,
    };
  });
  return {
    format: EXPORT_FORMAT,
    version: EXPORT_VERSION,
    exportedAt: typeof root.exportedAt === 'string' ? root.exportedAt : new Date().toISOString(),
    user: parsedUser,
    conversations: parsedConversations,
    images: parsedImages,
  };
}

/**
 * The owner of a conversation, for operator tools only (`dialect export --conversation ID`, run by whoever holds
 * the database): it is not scoped by an acting user, and the server must not call it.
 */
export async function ownerOfConversation(database: Database, conversationId: string): Promise<string> {
  const conversation = checkId(conversationId, 'conversation');
  return guard(async () => {
    const [row] = await database.db
      .select({ userId: conversations.userId })
      .from(conversations)
      .where(eq(conversations.id, conversation));
    if (row === undefined) throw notFound('conversation');
    return row.userId;
  });
}
