/** The shape of a command: its definition for Discord, how it acknowledges, an optional quick check, and its work. */
import type {
  ChatInputCommandInteraction,
  MessageContextMenuCommandInteraction,
  RESTPostAPIChatInputApplicationCommandsJSONBody,
  RESTPostAPIContextMenuApplicationCommandsJSONBody,
  User,
} from 'discord.js';
import type { Actor } from '../api-client.ts';
import type { BotContext } from '../context.ts';

/**
 * How an interaction is acknowledged within Discord's 3 seconds, before its work starts:
 * - `defer`: a public "thinking…" reply, edited with progress and the result;
 * - `defer-ephemeral`: the same, seen only by the person;
 * - `update`: a deferred update of the message the component is on;
 * - `modal`: the handler answers with a modal itself (a modal must be the first response).
 */
export type Acknowledge = 'defer' | 'defer-ephemeral' | 'update' | 'modal';

export interface SlashCommand {
  kind: 'slash';
  data: RESTPostAPIChatInputApplicationCommandsJSONBody;
  ack: Acknowledge;
  /** Checks that need no network, run before acknowledging; a BotUserError is answered at once, ephemerally. */
  check?(interaction: ChatInputCommandInteraction, ctx: BotContext): void;
  run(interaction: ChatInputCommandInteraction, ctx: BotContext): Promise<void>;
}

export interface MessageMenuCommand {
  kind: 'message';
  data: RESTPostAPIContextMenuApplicationCommandsJSONBody;
  ack: Acknowledge;
  check?(interaction: MessageContextMenuCommandInteraction, ctx: BotContext): void;
  run(interaction: MessageContextMenuCommandInteraction, ctx: BotContext): Promise<void>;
}

export type Command = SlashCommand | MessageMenuCommand;

/** Each Discord user acts as their own Dialect user. */
export function actorOf(user: User): Actor {
  return { discordId: user.id, name: user.globalName ?? user.username };
}

/** What /describe and "Describe image" ask when no question is given (the shapes world's canonical question). */
export const DEFAULT_QUESTION = 'Describe the image.';
