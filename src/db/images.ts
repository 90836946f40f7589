/** Images: image tokens are the truth, the PNG a cache that can be re-rendered from them. */
import { and, desc, eq, inArray, isNull, notExists, sql } from 'drizzle-orm';
import type { Database, Db } from './client.ts';
import { DbError, notFound } from './errors.ts';
import { checkText, beforeCursor, guard, LIMITS, pageSize, toPage, type Page } from './guard.ts';
import { checkId, newId } from './ids.ts';
import { images, turnImages, type ImageOrigin, type ImageRow, type ImageView } from './schema/index.ts';
import { contentHash, decodeTokens, encodeTokens } from './tokens.ts';

/** An image without its tokens or PNG: what listings and conversations carry. */
export interface ImageSummary {
  id: string;
  origin: ImageOrigin;
  parentImageId: string | null;
  width: number;
  height: number;
  scale: number;
  codebookSize: number;
  tokenCount: number;
  renderSeed: number | null;
  modelName: string;
  modelVersion: string;
  contentHash: string;
  /** Whether the PNG cache holds the pixels; when false, render them from the tokens. */
  hasPng: boolean;
  createdAt: Date;
}

/** An image with its tokens, enough to re-render it: `TarModel.renderImage({ tokens, scale, seed: renderSeed })`. */
export interface Image extends ImageSummary {
  tokens: number[];
  /** The same image's tokens at other scales, read with `tokens` when it is asked about ([] for none). */
  views: ImageView[];
}

/** A new image, as the model runtime reports it (`GeneratedImage`, or the tokens of an upload). */
export interface NewImage {
  origin: ImageOrigin;
  tokens: number[];
  scale: number;
  codebookSize: number;
  width: number;
  height: number;
  modelName: string;
  modelVersion: string;
  /** The AR-DTok seed the pixels were rendered with. */
  renderSeed?: number | null;
  /** The image this one was edited from; must be the same user's. */
  parentImageId?: string | null;
  /** PNG bytes: the upload as sent, or the rendered pixels (a cache). */
  png?: Buffer | null;
  /** An upload's tokens at other scales (each scale once, not `scale`); default none. */
  views?: ImageView[];
}

export const summaryColumns = {
  id: images.id,
  origin: images.origin,
  parentImageId: images.parentImageId,
  width: images.width,
  height: images.height,
  scale: images.scale,
  codebookSize: images.codebookSize,
  tokenCount: images.tokenCount,
  renderSeed: images.renderSeed,
  modelName: images.modelName,
  modelVersion: images.modelVersion,
  contentHash: images.contentHash,
  hasPng: sql<boolean>`${images.png} is not null`.as('has_png'),
  createdAt: images.createdAt,
};

export function toImage(row: ImageRow): Image {
  return {
    id: row.id,
    origin: row.origin,
    parentImageId: row.parentImageId,
    width: row.width,
    height: row.height,
    scale: row.scale,
    codebookSize: row.codebookSize,
    tokenCount: row.tokenCount,
    renderSeed: row.renderSeed,
    modelName: row.modelName,
    modelVersion: row.modelVersion,
    contentHash: row.contentHash,
    hasPng: row.png !== null,
    createdAt: row.createdAt,
    tokens: decodeTokens(row.tokens),
    views: row.views,
  };
}

/** Checks an image's other views (the same checks as its tokens; each scale once, not the image's own). */
function checkViews(views: readonly ImageView[], scale: number, codebookSize: number): ImageView[] {
  if (views.length > 16) throw new DbError('FIELD_TOO_LONG', `${views.length} views, at most 16`, { field: 'views' });
  const seen = new Set([scale]);
  return views.map((view) => {
    if (!Number.isInteger(view.scale) || view.scale < 1 || view.scale > 16 || seen.has(view.scale)) {
      throw new DbError('INVALID_INPUT', `a view's scale must be an integer in [1, 16], each once and not the image's own`, {
        field: 'views',
      });
    }
    seen.add(view.scale);
    encodeTokens(view.tokens, codebookSize);
    return { scale: view.scale, tokens: [...view.tokens] };
  });
}

/** Validates a new image and makes its row (tokens packed, hash computed). Throws before any write. */
export function imageRow(userId: string, input: NewImage, id = newId()): typeof images.$inferInsert {
  const tokens = encodeTokens(input.tokens, input.codebookSize);
  for (const [field, value] of [
    ['width', input.width],
    ['height', input.height],
  ] as const) {
    if (!Number.isInteger(value) || value < 1 || value > 8192) {
      throw new DbError('INVALID_INPUT', `${field} must be an integer in [1, 8192]`, { field });
    }
  }
  if (!Number.isInteger(input.scale) || input.scale < 1 || input.scale > 16) {
    throw new DbError('INVALID_INPUT', 'scale must be an integer in [1, 16]', { field: 'scale' });
  }
  if (!['upload', 'generated', 'edited'].includes(input.origin)) {
    throw new DbError('INVALID_INPUT', `unknown origin "${String(input.origin)}"`, { field: 'origin' });
  }
  checkText('modelName', input.modelName);
  checkText('modelVersion', input.modelVersion);
  if (input.png !== undefined && input.png !== null && input.png.length > LIMITS.pngBytes) {
    throw new DbError('FIELD_TOO_LONG', `PNG of ${input.png.length} bytes, at most ${LIMITS.pngBytes}`, { field: 'png' });
  }
  const views = checkViews(input.views ?? [], input.scale, input.codebookSize);
  const renderSeed = input.renderSeed ?? null;
  if (renderSeed !== null && (!Number.isSafeInteger(renderSeed) || renderSeed < 0)) {
    throw new DbError('INVALID_INPUT', 'renderSeed must be a non-negative safe integer', { field: 'renderSeed' });
  }
  return {
    id,
    userId,
    origin: input.origin,
    parentImageId: input.parentImageId == null ? null : checkId(input.parentImageId, 'parent image'),
    width: input.width,
    height: input.height,
    tokens,
    tokenCount: input.tokens.length,
    scale: input.scale,
    views,
    codebookSize: input.codebookSize,
    renderSeed,
    modelName: input.modelName,
    modelVersion: input.modelVersion,
    contentHash: contentHash({ tokens, scale: input.scale, codebookSize: input.codebookSize, modelVersion: input.modelVersion }),
    png: input.png ?? null,
  };
}

/** Inserts image rows inside a transaction, after checking that every parent image is the same user's. */
export async function insertImages(tx: Db, userId: string, rows: (typeof images.$inferInsert)[]): Promise<void> {
  if (rows.length === 0) return;
  const own = new Set(rows.map((row) => row.id));
  const parents = [...new Set(rows.map((row) => row.parentImageId).filter((id): id is string => id != null && !own.has(id)))];
  await assertOwnImages(tx, userId, parents);
  await tx.insert(images).values(rows);
}

/** NOT_FOUND unless every id is an image of this user. */
export async function assertOwnImages(tx: Db, userId: string, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  const found = await tx
    .select({ id: images.id })
    .from(images)
    .where(and(eq(images.userId, userId), inArray(images.id, ids)));
  if (found.length !== new Set(ids).size) throw notFound('image');
}

/** Deletes those of `ids` that no turn links any more (after a conversation or a turn went). */
export async function pruneUnlinkedImages(tx: Db, userId: string, ids: string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const deleted = await tx
    .delete(images)
    .where(
      and(
        eq(images.userId, userId),
        inArray(images.id, ids),
        notExists(tx.select({ one: sql`1` }).from(turnImages).where(eq(turnImages.imageId, images.id))),
      ),
    )
    .returning({ id: images.id });
  return deleted.length;
}

/** One of the acting user's images with its tokens. NOT_FOUND for unknown ids and other users' images alike. */
export async function getImage(database: Database, userId: string, imageId: string): Promise<Image> {
  const owner = checkId(userId, 'user');
  const id = checkId(imageId, 'image');
  return guard(async () => {
    const [row] = await database.db
      .select()
      .from(images)
      .where(and(eq(images.id, id), eq(images.userId, owner)));
    if (row === undefined) throw notFound('image');
    return toImage(row);
  });
}

/** The cached PNG of an image, or null when the cache is empty (render from `getImage`'s tokens, then setImagePng). */
export async function getImagePng(database: Database, userId: string, imageId: string): Promise<Buffer | null> {
  const owner = checkId(userId, 'user');
  const id = checkId(imageId, 'image');
  return guard(async () => {
    const [row] = await database.db
      .select({ png: images.png })
      .from(images)
      .where(and(eq(images.id, id), eq(images.userId, owner)));
    if (row === undefined) throw notFound('image');
    return row.png;
  });
}

/** Fills (or, with null, empties) the PNG cache of an image. */
export async function setImagePng(database: Database, userId: string, imageId: string, png: Buffer | null): Promise<void> {
  const owner = checkId(userId, 'user');
  const id = checkId(imageId, 'image');
  if (png !== null && png.length > LIMITS.pngBytes) {
    throw new DbError('FIELD_TOO_LONG', `PNG of ${png.length} bytes, at most ${LIMITS.pngBytes}`, { field: 'png' });
  }
  await guard(async () => {
    const updated = await database.db
      .update(images)
      .set({ png })
      .where(and(eq(images.id, id), eq(images.userId, owner)))
      .returning({ id: images.id });
    if (updated.length === 0) throw notFound('image');
  });
}

/** The acting user's images, newest first, `limit` (default 20, at most 100) a page. */
export async function listImages(
  database: Database,
  userId: string,
  options: { limit?: number; cursor?: string; origin?: ImageOrigin; withoutPng?: boolean } = {},
): Promise<Page<ImageSummary>> {
  const owner = checkId(userId, 'user');
  const limit = pageSize(options.limit);
  const before = beforeCursor(images.createdAt, images.id, options.cursor);
  return guard(async () => {
    const rows = await database.db
      .select(summaryColumns)
      .from(images)
      .where(
        and(
          eq(images.userId, owner),
          before,
          options.origin === undefined ? undefined : eq(images.origin, options.origin),
          options.withoutPng ? isNull(images.png) : undefined,
        ),
      )
      .orderBy(desc(images.createdAt), desc(images.id))
      .limit(limit + 1);
    return toPage(rows, limit);
  });
}

/** The acting user's images with this content hash (dedupe of uploads and re-renders). */
export async function findImagesByHash(database: Database, userId: string, hash: string): Promise<ImageSummary[]> {
  const owner = checkId(userId, 'user');
  if (!/^[0-9a-f]{64}$/.test(hash)) throw new DbError('INVALID_INPUT', 'a content hash is 64 hex digits', { field: 'hash' });
  return guard(() =>
    database.db
      .select(summaryColumns)
      .from(images)
      .where(and(eq(images.userId, owner), eq(images.contentHash, hash)))
      .orderBy(desc(images.createdAt), desc(images.id)),
  );
}

/** The images edited from one of the acting user's images, oldest first. */
export async function listImageChildren(database: Database, userId: string, imageId: string): Promise<ImageSummary[]> {
  const owner = checkId(userId, 'user');
  const id = checkId(imageId, 'image');
  return guard(async () => {
    const [parent] = await database.db
      .select({ id: images.id })
      .from(images)
      .where(and(eq(images.id, id), eq(images.userId, owner)));
    if (parent === undefined) throw notFound('image');
    return database.db
      .select(summaryColumns)
      .from(images)
      .where(and(eq(images.parentImageId, id), eq(images.userId, owner)))
      .orderBy(images.createdAt, images.id);
  });
}
