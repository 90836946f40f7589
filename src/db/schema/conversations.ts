/** The conversations aggregate: a conversation and its tree of turns. */
import { sql } from 'drizzle-orm';
import { check, index, jsonb, pgTable, text, uuid, type AnyPgColumn } from 'drizzle-orm/pg-core';
import { id, timestampMs, tsvector } from './columns.ts';
import { users } from './users.ts';

export const conversations = pgTable(
  'conversations',
  {
    id: id(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    title: text('title').notNull(),
    createdAt: timestampMs('created_at').notNull().defaultNow(),
    /** Last time a turn was added or the conversation was renamed. */
    updatedAt: timestampMs('updated_at').notNull().defaultNow(),
  },
  (t) => [
    // listConversations: a user's conversations newest first, cursor on (created_at, id).
    index('conversations_user_created_idx').on(t.userId, t.createdAt.desc(), t.id.desc()),
    check('conversations_title_length', sql`char_length(${t.title}) <= 200`),
  ],
);

export const TURN_ROLES = ['user', 'assistant'] as const;
export const TURN_TASKS = ['understand', 'generate', 'edit'] as const;
export const TURN_STATUSES = ['pending', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type TurnRole = (typeof TURN_ROLES)[number];
export type TurnTask = (typeof TURN_TASKS)[number];
export type TurnStatus = (typeof TURN_STATUSES)[number];

/**
 * The settings a turn ran with, versioned so that old rows stay readable when fields are added. `seed` and
 * `scale` are what re-running needs; sampling overrides are kept as the request gave them.
 */
export interface TurnSettingsV1 {
  v: 1;
  seed?: number;
  scale?: number;
  sampling?: Record<string, number>;
  detokSampling?: Record<string, number>;
  /** The request asked the model to check the image it wrote (src/model/self-check.ts). */
  selfCheck?: boolean;
}
export type TurnSettings = TurnSettingsV1;

/** Per-stage wall times in milliseconds, as src/model's `Timings` reports them. */
export type StageTimings = Record<string, number>;

/**
 * One exchange: the person's request (prompt, input images) and the model's answer (text, output images).
 * Turns form a tree through `parent_id`: a follow-up or an edit of a result is a child, a reroll is a sibling
 * (same parent). Nothing is ever overwritten.
 */
export const turns = pgTable(
  'turns',
  {
    id: id(),
    conversationId: uuid('conversation_id')
      .notNull()
      .references(() => conversations.id, { onDelete: 'cascade' }),
    /** The owner, copied from the conversation so that scoping and search need no join. */
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    parentId: uuid('parent_id').references((): AnyPgColumn => turns.id, { onDelete: 'cascade' }),
    role: text('role', { enum: TURN_ROLES }).notNull(),
    task: text('task', { enum: TURN_TASKS }).notNull(),
    prompt: text('prompt').notNull(),
    answer: text('answer'),
    settings: jsonb('settings').$type<TurnSettings>().notNull(),
    status: text('status', { enum: TURN_STATUSES }).notNull(),
    errorCode: text('error_code'),
    errorMessage: text('error_message'),
    timings: jsonb('timings').$type<StageTimings>(),
    modelName: text('model_name'),
    modelVersion: text('model_version'),
    createdAt: timestampMs('created_at').notNull().defaultNow(),
    updatedAt: timestampMs('updated_at').notNull().defaultNow(),
    /** Words of the prompt and the answer, for searchTurns. 'simple': no stemming, same on every server. */
    searchVector: tsvector('search_vector').generatedAlwaysAs(
      sql`to_tsvector('simple'::regconfig, coalesce(prompt, '') || ' ' || coalesce(answer, ''))`,
    ),
  },
  (t) => [
    // getConversation: a conversation's turns in order.
    index('turns_conversation_created_idx').on(t.conversationId, t.createdAt, t.id),
    // getConversation / deleteTurn: children of a turn (the tree), and the parent_id foreign key's cascade.
    index('turns_parent_idx').on(t.parentId),
    // searchTurns: full-text search of a user's prompts and answers.
    index('turns_search_idx').using('gin', t.searchVector),
    // searchTurns (newest first within a user) and the user_id foreign key's cascade.
    index('turns_user_created_idx').on(t.userId, t.createdAt.desc(), t.id.desc()),
    check('turns_prompt_length', sql`char_length(${t.prompt}) <= 8000`),
    check('turns_answer_length', sql`char_length(${t.answer}) <= 32000`),
    check('turns_error_code_length', sql`char_length(${t.errorCode}) <= 64`),
    check('turns_error_message_length', sql`char_length(${t.errorMessage}) <= 2000`),
    check('turns_model_length', sql`char_length(${t.modelName}) <= 200 and char_length(${t.modelVersion}) <= 200`),
    check('turns_settings_version', sql`(${t.settings} ->> 'v') = '1'`),
    check('turns_role', sql`${t.role} in ('user', 'assistant')`),
    check('turns_task', sql`${t.task} in ('understand', 'generate', 'edit')`),
    check('turns_status', sql`${t.status} in ('pending', 'running', 'succeeded', 'failed', 'cancelled')`),
    check('turns_parent_not_self', sql`${t.parentId} <> ${t.id}`),
  ],
);

export type ConversationRow = typeof conversations.$inferSelect;
export type TurnRow = typeof turns.$inferSelect;
