/**
 * Messages people send (needs the Message Content intent):
 * - a reply to one of the bot's images edits that image with the reply's text (in the image's conversation);
 * - a mention of the bot in a channel starts a thread from the message, and the thread is a new conversation;
 * - a mention in a thread the bot started continues that conversation, with its earlier turns as context.
 * What a mention asks for is read from its words: a question about the conversation's latest image (or an attached
 * one) is answered, an instruction ("make…", "move…", "add…") edits it, anything else is drawn.
 */
import type { Message } from 'discord.js';
import { type Actor, ApiUserError, type ImageInput, type StartedTurn, type TurnResult } from './api-client.ts';
import { actorOf } from './commands/types.ts';
import { parseCustomId } from './components/custom-ids.ts';
import type { BotContext } from './context.ts';
import { BotUserError, describeError, errorLine } from './errors.ts';
import { attachmentInput, imageAttachment, messageImageInput } from './images.ts';
import { clip, runTurn } from './results.ts';
import { ChannelSurface } from './surfaces.ts';

export type MessageTask = 'UNDERSTAND' | 'EDIT' | 'GENERATE';

const QUESTION = /^(what|which|how|where|is|are|does|do|who|why|describe|tell me)\b/i;
const INSTRUCTION = /^(please\s+)?(make|change|turn|move|remove|delete|erase|add|put|recolou?r|resize|replace|swap|shift|paint)\b/i;

/** What a message's text asks for, given whether an image is at hand (attached, or the conversation's latest). */
export function chooseTask(text: string, image: 'attached' | 'latest' | 'none'): MessageTask {
  if (image === 'none') return 'GENERATE';
  const question = /\?\s*$/.test(text) || QUESTION.test(text);
  if (question) return 'UNDERSTAND';
  if (image === 'attached' || INSTRUCTION.test(text)) return 'EDIT';
  return 'GENERATE';
}

/** The message's text without mentions of the bot. */
export function withoutMentions(content: string, botId: string): string {
  return content.replace(new RegExp(`<@!?${botId}>`, 'g'), ' ').replace(/\s+/g, ' ').trim();
}

export async function handleMessage(message: Message, ctx: BotContext): Promise<void> {
  const me = ctx.client.user;
  if (message.author.bot || me === null || !message.inGuild()) return;
  try {
    if (message.reference?.messageId !== undefined) {
      const referenced = await message.fetchReference().catch(() => null);
      if (referenced !== null && referenced.author.id === me.id && imageAttachment(referenced) !== undefined) {
        await replyToEdit(message, referenced, ctx);
        return;
      }
    }
    if (!message.mentions.has(me, { ignoreRepliedUser: true, ignoreEveryone: true, ignoreRoles: true })) return;
    if (message.channel.isThread()) {
      if (message.channel.ownerId === me.id) await continueThread(message, ctx);
      return;
    }
    await startThread(message, ctx);
  } catch (error) {
    const friendly = describeError(error, ctx.logger, { message: message.id, user: message.author.id });
    await message
      .reply({ content: errorLine(friendly), allowedMentions: { parse: [], repliedUser: false } })
      .catch((failure: unknown) => ctx.logger.warn({ err: failure, message: message.id }, 'could not tell the person about an error'));
  }
}

async function replyToEdit(message: Message<true>, referenced: Message, ctx: BotContext): Promise<void> {
  const me = ctx.client.user?.id ?? '';
  const instruction = withoutMentions(message.content, me);
  if (instruction === '') throw new BotUserError('Reply with an instruction to edit the image, e.g. "make the circle blue".');
  const actor = actorOf(message.author);
  const found = await messageImageInput(ctx, actor, referenced);
  await runTurn(ctx, actor, new ChannelSurface(message.channel, message), `Editing: “${clip(instruction, 80)}”`, () =>
    ctx.api.edit(actor, {
      prompt: instruction,
      image: found.image,
      ...(found.conversationId === undefined ? {} : { conversationId: found.conversationId }),
      ...(found.turnId === undefined ? {} : { parentTurnId: found.turnId }),
    }),
  );
}

async function startThread(message: Message<true>, ctx: BotContext): Promise<void> {
  const text = withoutMentions(message.content, ctx.client.user?.id ?? '');
  const attachment = imageAttachment(message);
  if (text === '') throw new BotUserError('Mention me with a prompt, e.g. "@Dialect a large red circle in the center", and I will start a thread.');
  const image = attachment === undefined ? undefined : await attachmentInput(ctx, attachment);
  const actor = actorOf(message.author);
  const thread = await message.startThread({ name: clip(text, 90), autoArchiveDuration: 1440 });
  await runInConversation(ctx, actor, new ChannelSurface(thread), text, image === undefined ? undefined : { input: image, attached: true }, undefined);
}

async function continueThread(message: Message<true>, ctx: BotContext): Promise<void> {
  const text = withoutMentions(message.content, ctx.client.user?.id ?? '');
  if (text === '') throw new BotUserError('Mention me with what to do next, e.g. "make the circle blue" or "what color is the square?".');
  const actor = actorOf(message.author);
  const latestTurnId = await latestTurnInThread(message, ctx);
  let latest: TurnResult | undefined;
  if (latestTurnId !== undefined) {
    try {
      latest = await ctx.api.turn(actor, latestTurnId);
    } catch (error) {
      if (error instanceof ApiUserError && error.code === 'NOT_FOUND') {
        throw new BotUserError("This thread is someone else's conversation (each person has their own). Mention me in a channel to start yours.");
      }
      throw error;
    }
  }
  const attachment = imageAttachment(message);
  let image: { input: ImageInput; attached: boolean } | undefined;
  if (attachment !== undefined) image = { input: await attachmentInput(ctx, attachment), attached: true };
  else {
    const latestImage = latest?.image ?? latest?.inputImage ?? null;
    if (latestImage !== null) image = { input: { id: latestImage.id }, attached: false };
  }
  await runInConversation(ctx, actor, new ChannelSurface(message.channel, message), text, image, latest);
}

/** The newest turn the bot posted in the thread: its result messages carry the turn id in their Reroll button. */
async function latestTurnInThread(message: Message<true>, ctx: BotContext): Promise<string | undefined> {
  const recent = await message.channel.messages.fetch({ limit: 50 });
  const newestFirst = [...recent.values()].sort((a, b) => b.createdTimestamp - a.createdTimestamp || (BigInt(b.id) > BigInt(a.id) ? 1 : -1));
  for (const candidate of newestFirst) {
    if (candidate.author.id !== ctx.client.user?.id) continue;
    for (const row of candidate.components) {
      if (!('components' in row)) continue;
      for (const component of row.components) {
        const id = 'customId' in component ? component.customId : null;
        const parsed = id === null ? undefined : parseCustomId(id);
        if (parsed?.kind === 'reroll') return parsed.args[0];
      }
    }
  }
  return undefined;
}

async function runInConversation(
  ctx: BotContext,
  actor: Actor,
  surface: ChannelSurface,
  text: string,
  image: { input: ImageInput; attached: boolean } | undefined,
  latest: TurnResult | undefined,
): Promise<void> {
  const task = chooseTask(text, image === undefined ? 'none' : image.attached ? 'attached' : 'latest');
  const context = latest === undefined ? {} : { conversationId: latest.conversation.id, parentTurnId: latest.id };
  let start: () => Promise<StartedTurn>;
  let label: string;
  if (task === 'UNDERSTAND' && image !== undefined) {
    label = 'Looking at the image';
    start = () => ctx.api.understand(actor, { prompt: text, image: image.input, ...context });
  } else if (task === 'EDIT' && image !== undefined) {
    label = `Editing: “${clip(text, 80)}”`;
    start = () => ctx.api.edit(actor, { prompt: text, image: image.input, ...context });
  } else {
    label = `Generating “${clip(text, 80)}”`;
    start = () => ctx.api.generate(actor, { prompt: text, ...context });
  }
  await runTurn(ctx, actor, surface, label, start);
}
