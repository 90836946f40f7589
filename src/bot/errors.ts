/**
 * The one place that turns failures into what a person reads. Expected failures (a bad attachment, a full queue,
 * a rate limit, the API being down) get a friendly sentence; anything else gets a short report id that is logged
 * with the error, so a person can quote it and an operator can find it.
 */
import { randomBytes } from 'node:crypto';
import { DiscordAPIError } from 'discord.js';
import { ApiFaultError, ApiUnavailableError, ApiUserError, type UserErrorCode } from './api-client.ts';
import type { BotLogger } from './logger.ts';

/** A refusal decided by the bot itself (before calling the API), already in friendly words. */
export class BotUserError extends Error {
  override readonly name = 'BotUserError';
}

const USER_ERRORS: Record<UserErrorCode, string> = {
  INVALID_INPUT: 'That request has a value Dialect cannot use',
  INVALID_IMAGE: 'That file is not an image Dialect can read: attach a PNG or JPEG.',
  IMAGE_TOO_LARGE: 'That image is too large for Dialect: attach a smaller PNG or JPEG.',
  PROMPT_TOO_LONG: 'That text is too long for the model (with the conversation so far). Try something shorter, or start a new conversation.',
  NOT_FOUND: "I can't find that in your history: it may have been deleted, or it belongs to someone else (each person has their own Dialect history).",
  QUEUE_FULL: 'Dialect is busy right now (the queue is full). Please try again in a minute.',
  RATE_LIMITED: "You're going a bit fast: please wait a moment before the next request.",
  CANCELLED: 'That request was cancelled.',
  MODEL_FAILED: 'The model failed on that request. Try again, perhaps with other words.',
};

export const API_DOWN = "Dialect's API can't be reached right now. Please try again in a minute.";

export interface Friendly {
  text: string;
  /** Set for unexpected errors: the id under which the error was logged. */
  reportId?: string;
}

/** The friendly text for an error; logs unexpected ones under a new report id. */
export function describeError(error: unknown, logger: BotLogger, context: Record<string, unknown> = {}): Friendly {
  if (error instanceof BotUserError) return { text: error.message };
  if (error instanceof ApiUserError) {
    const base = USER_ERRORS[error.code] ?? error.message;
    return { text: error.code === 'INVALID_INPUT' ? `${base}: ${error.message}.` : base };
  }
  if (error instanceof ApiUnavailableError) {
    logger.warn({ ...context, err: error.message }, 'the API is unavailable');
    return { text: API_DOWN };
  }
  if (error instanceof DiscordAPIError && error.status === 429) {
    return { text: 'Discord is limiting how fast I can answer. Please try again in a moment.' };
  }
  const reportId = randomBytes(4).toString('hex');
  if (error instanceof ApiFaultError && error.code === 'UNAUTHENTICATED') {
    logger.error({ ...context, reportId, err: error }, 'the API refused the bot key (check DIALECT_API_KEY)');
  } else {
    logger.error({ ...context, reportId, err: error }, 'unexpected error');
  }
  return { text: `Something went wrong on my side. If it keeps happening, tell the operator report id \`${reportId}\`.`, reportId };
}

/** `⚠️ text`, the form every error takes in Discord. */
export function errorLine(friendly: Friendly): string {
  return `⚠️ ${friendly.text}`;
}
