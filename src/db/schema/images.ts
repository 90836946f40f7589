/** The images aggregate: every image uploaded or produced, as image tokens (the truth) and a PNG (a cache). */
import { sql } from 'drizzle-orm';
import { bigint, check, index, integer, jsonb, pgTable, primaryKey, smallint, text, uuid, type AnyPgColumn } from 'drizzle-orm/pg-core';
import { bytea, id, timestampMs } from './columns.ts';
import { turns } from './conversations.ts';
import { users } from './users.ts';

export const IMAGE_ORIGINS = ['upload', 'generated', 'edited'] as const;
export type ImageOrigin = (typeof IMAGE_ORIGINS)[number];

/** The same image's tokens at another scale (an upload encoded again for understanding: src/model/views.ts). */
export interface ImageView {
  scale: number;
  tokens: number[];
}

export const images = pgTable(
  'images',
  {
    id: id(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    origin: text('origin', { enum: IMAGE_ORIGINS }).notNull(),
    /** The image an edit started from. Kept as history only: deleting the parent leaves the child. */
    parentImageId: uuid('parent_image_id').references((): AnyPgColumn => images.id, { onDelete: 'set null' }),
    width: integer('width').notNull(),
    height: integer('height').notNull(),
    /** TA-Tok codes, each a little-endian uint16 (2 bytes a token): see docs/persistence.md. */
    tokens: bytea('tokens').notNull(),
    tokenCount: integer('token_count').notNull(),
    scale: smallint('scale').notNull(),
    /** Other views of an upload, read with `tokens` when the image is asked about (docs/persistence.md); [] for none. */
    views: jsonb('views').$type<ImageView[]>().notNull().default([]),
    codebookSize: integer('codebook_size').notNull(),
    /** The AR-DTok seed the PNG was rendered with, so that a re-render gives the same pixels. */
    renderSeed: bigint('render_seed', { mode: 'number' }),
    modelName: text('model_name').notNull(),
    modelVersion: text('model_version').notNull(),
    /** sha256 (hex) of the canonical tokens, scale, codebook size and model version: src/db/tokens.ts. */
    contentHash: text('content_hash').notNull(),
    /** PNG bytes: for generated and edited images a cache that may be null (re-render from the tokens); for an
     * upload, the bytes the person sent. */
    png: bytea('png'),
    createdAt: timestampMs('created_at').notNull().defaultNow(),
  },
  (t) => [
    // listImages: a user's images newest first, cursor on (created_at, id); also the user_id cascade.
    index('images_user_created_idx').on(t.userId, t.createdAt.desc(), t.id.desc()),
    // findImagesByHash: is this image already stored for this user (dedupe of re-uploads and re-renders).
    index('images_user_hash_idx').on(t.userId, t.contentHash),
    // The parent_image_id foreign key's SET NULL on delete, and an image's edits.
    index('images_parent_idx').on(t.parentImageId),
    check('images_origin', sql`${t.origin} in ('upload', 'generated', 'edited')`),
    check('images_token_bytes', sql`octet_length(${t.tokens}) = 2 * ${t.tokenCount}`),
    check('images_token_count', sql`${t.tokenCount} between 1 and 4096`),
    check('images_scale', sql`${t.scale} between 1 and 16`),
    check('images_views', sql`jsonb_typeof(${t.views}) = 'array' and jsonb_array_length(${t.views}) <= 16`),
    check('images_codebook_size', sql`${t.codebookSize} between 2 and 65536`),
    check('images_size', sql`${t.width} between 1 and 8192 and ${t.height} between 1 and 8192`),
    check('images_model_length', sql`char_length(${t.modelName}) <= 200 and char_length(${t.modelVersion}) <= 200`),
    check('images_hash_format', sql`${t.contentHash} ~ '^[0-9a-f]{64}$'`),
    check('images_png_size', sql`octet_length(${t.png}) <= 16777216`),
  ],
);

export const TURN_IMAGE_ROLES = ['input', 'output'] as const;
export type TurnImageRole = (typeof TURN_IMAGE_ROLES)[number];

/**
 * Which images a turn read and wrote. An image can be an input of several turns (asked about again, edited
 * twice), so this is a link table; an image that no turn links is deleted with the last conversation using it.
 */
export const turnImages = pgTable(
  'turn_images',
  {
    turnId: uuid('turn_id')
      .notNull()
      .references(() => turns.id, { onDelete: 'cascade' }),
    imageId: uuid('image_id')
      .notNull()
      .references(() => images.id, { onDelete: 'cascade' }),
    role: text('role', { enum: TURN_IMAGE_ROLES }).notNull(),
    position: smallint('position').notNull(),
  },
  (t) => [
    // getConversation: a turn's images in order (the primary key's leading turn_id).
    primaryKey({ columns: [t.turnId, t.role, t.position] }),
    // deleteConversation: is an image still used by a turn elsewhere; also the image_id cascade.
    index('turn_images_image_idx').on(t.imageId),
    check('turn_images_role', sql`${t.role} in ('input', 'output')`),
    check('turn_images_position', sql`${t.position} between 0 and 15`),
  ],
);

export type ImageRow = typeof images.$inferSelect;
