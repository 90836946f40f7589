/**
 * Buttons and modal submissions, by the kind in their custom id. Like commands, each declares how it acknowledges.
 * Buttons under a result act for whoever clicks: the owner's stored turn or image is used by id; for anyone else,
 * Describe and Edit re-read the image from the message's attachment, and Reroll, Show tokens and Cancel are refused
 * with a friendly NOT_FOUND (the turn is in its owner's history, not theirs).
 */
import { AttachmentBuilder, type ButtonInteraction, type Message, type ModalSubmitInteraction } from 'discord.js';
import type { Actor, ImageInput } from '../api-client.ts';
import { historyPage } from '../commands/history.ts';
import { actorOf, DEFAULT_QUESTION, type Acknowledge } from '../commands/types.ts';
import type { BotContext } from '../context.ts';
import { BotUserError } from '../errors.ts';
import { attachmentInput, imageAttachment, messageImageInput, ownedImage } from '../images.ts';
import { tokenGridPng, tokenGridText } from '../render.ts';
import { runTurn } from '../results.ts';
import { InteractionSurface } from '../surfaces.ts';
import { customId, type ComponentKind } from './custom-ids.ts';
import { editModal, INSTRUCTION_INPUT } from './modals.ts';

export interface ComponentHandler {
  ack: Acknowledge;
  run(interaction: ButtonInteraction | ModalSubmitInteraction, args: string[], ctx: BotContext): Promise<void>;
}

/** The image `imageId` for the actor: by id when theirs, else from the attachment of the message clicked. */
async function imageFor(ctx: BotContext, actor: Actor, imageId: string, message: Message | null): Promise<{ image: ImageInput; turnId?: string; conversationId?: string }> {
  const owned = await ownedImage(ctx, actor, imageId);
  if (owned !== undefined) return owned;
  const attachment = message === null ? undefined : imageAttachment(message);
  if (attachment === undefined) throw new BotUserError("That image is in someone else's history and this message has no copy of it I can read.");
  return { image: await attachmentInput(ctx, attachment) };
}

function continuation(found: { turnId?: string; conversationId?: string }): { conversationId?: string; parentTurnId?: string } {
  return {
    ...(found.conversationId === undefined ? {} : { conversationId: found.conversationId }),
    ...(found.turnId === undefined ? {} : { parentTurnId: found.turnId }),
  };
}

async function runEdit(interaction: ButtonInteraction | ModalSubmitInteraction, ctx: BotContext, found: { image: ImageInput; turnId?: string; conversationId?: string }): Promise<void> {
  if (!interaction.isModalSubmit()) throw new Error('an edit needs the modal');
  const actor = actorOf(interaction.user);
  const instruction = interaction.fields.getTextInputValue(INSTRUCTION_INPUT).trim();
  if (instruction === '') throw new BotUserError('The instruction is empty: say what to change, e.g. "make the circle blue".');
  await runTurn(ctx, actor, new InteractionSurface(interaction), `Editing: “${instruction.slice(0, 80)}”`, () =>
    ctx.api.edit(actor, { prompt: instruction, image: found.image, ...continuation(found) }),
  );
}

export const COMPONENTS: Record<ComponentKind, ComponentHandler> = {
  reroll: {
    ack: 'defer',
    async run(interaction, [turnId], ctx) {
      const actor = actorOf(interaction.user);
      await runTurn(ctx, actor, new InteractionSurface(interaction), 'Rerolling with a new seed', () => ctx.api.reroll(actor, turnId as string));
    },
  },
  edit: {
    ack: 'modal',
    async run(interaction, [imageId]) {
      if (interaction.isModalSubmit()) return;
      await interaction.showModal(editModal(customId('editmodal', imageId as string)));
    },
  },
  editmodal: {
    ack: 'defer',
    async run(interaction, [imageId], ctx) {
      await runEdit(interaction, ctx, await imageFor(ctx, actorOf(interaction.user), imageId as string, interaction.message));
    },
  },
  editmessage: {
    ack: 'defer',
    async run(interaction, [channelId, messageId], ctx) {
      const channel = await ctx.client.channels.fetch(channelId as string);
      if (channel === null || !channel.isTextBased()) throw new BotUserError("I can't see that message's channel any more.");
      const message = await channel.messages.fetch(messageId as string).catch(() => null);
      if (message === null) throw new BotUserError('That message is gone, so there is no image to edit.');
      await runEdit(interaction, ctx, await messageImageInput(ctx, actorOf(interaction.user), message));
    },
  },
  describe: {
    ack: 'defer',
    async run(interaction, [imageId], ctx) {
      const actor = actorOf(interaction.user);
      const found = await imageFor(ctx, actor, imageId as string, interaction.message);
      await runTurn(ctx, actor, new InteractionSurface(interaction), 'Looking at the image', () =>
        ctx.api.understand(actor, { prompt: DEFAULT_QUESTION, image: found.image, ...continuation(found) }),
      );
    },
  },
  tokens: {
    ack: 'defer-ephemeral',
    async run(interaction, [imageId], ctx) {
      const image = await ctx.api.image(actorOf(interaction.user), imageId as string);
      const text = tokenGridText(image.tokens, image.grid);
      const header = `🔢 Image tokens · scale ${image.scale} · ${image.grid}×${image.grid} grid · codebook ${image.codebookSize}`;
      const inline = `${header}\n\`\`\`\n${text}\n\`\`\``;
      const map = new AttachmentBuilder(await tokenGridPng(image.tokens, image.grid), { name: `tokens-${image.id}.png`, description: 'token ids as colours' });
      if (inline.length <= 2000) {
        await interaction.editReply({ content: inline, files: [map] });
      } else {
        const file = new AttachmentBuilder(Buffer.from(`${text}\n`, 'utf8'), { name: `tokens-${image.id}.txt` });
        await interaction.editReply({ content: `${header}\n(the grid is attached as text)`, files: [file, map] });
      }
    },
  },
  cancel: {
    ack: 'defer-ephemeral',
    async run(interaction, [jobId], ctx) {
      const job = await ctx.api.cancelJob(actorOf(interaction.user), jobId as string);
      await interaction.editReply({ content: job.status === 'CANCELLED' ? '⏹️ Cancelled.' : `It had already finished (${job.status.toLowerCase()}).` });
    },
  },
  history: {
    ack: 'update',
    async run(interaction, [key, index], ctx) {
      const actor = actorOf(interaction.user);
      const wanted = Number(index);
      const known = ctx.history.cursor(key as string, interaction.user.id, wanted);
      const page =
        known === null
          ? await historyPage(ctx, actor, ctx.history.open(interaction.user.id), 0, undefined, '(That list had expired; here is the first page again.)\n')
          : await historyPage(ctx, actor, key as string, wanted, known.cursor);
      await interaction.editReply({ content: page.content, components: page.components ?? [] });
    },
  },
};
