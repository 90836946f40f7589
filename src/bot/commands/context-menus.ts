/** Message context menu commands ("Apps" on any message with an image): "Describe image" and "Edit image". */
import { ApplicationCommandType, ContextMenuCommandBuilder, InteractionContextType, type MessageContextMenuCommandInteraction } from 'discord.js';
import { customId, imageIdFromFileName } from '../components/custom-ids.ts';
import { editModal } from '../components/modals.ts';
import type { BotContext } from '../context.ts';
import { BotUserError } from '../errors.ts';
import { checkAttachment, imageAttachment, messageImageInput } from '../images.ts';
import { runTurn } from '../results.ts';
import { InteractionSurface } from '../surfaces.ts';
import { actorOf, DEFAULT_QUESTION, type MessageMenuCommand } from './types.ts';

/** The target must carry an image we can use: one of the bot's results, or a PNG/JPEG within the limits. */
function checkTarget(interaction: MessageContextMenuCommandInteraction, ctx: BotContext): void {
  const attachment = imageAttachment(interaction.targetMessage);
  if (attachment === undefined) throw new BotUserError('That message has no image: use a message with a PNG or JPEG attachment.');
  const ours = interaction.targetMessage.author.id === ctx.client.user?.id && imageIdFromFileName(attachment.name) !== undefined;
  if (!ours) checkAttachment(attachment, ctx.api.knownLimits());
}

export const describeImage: MessageMenuCommand = {
  kind: 'message',
  data: new ContextMenuCommandBuilder().setName('Describe image').setType(ApplicationCommandType.Message).setContexts(InteractionContextType.Guild).toJSON(),
  ack: 'defer',
  check: checkTarget,
  async run(interaction, ctx) {
    const actor = actorOf(interaction.user);
    const { image, conversationId, turnId } = await messageImageInput(ctx, actor, interaction.targetMessage);
    await runTurn(ctx, actor, new InteractionSurface(interaction), 'Looking at the image', () =>
      ctx.api.understand(actor, {
        prompt: DEFAULT_QUESTION,
        image,
        ...(conversationId === undefined ? {} : { conversationId }),
        ...(turnId === undefined ? {} : { parentTurnId: turnId }),
      }),
    );
  },
};

export const editImage: MessageMenuCommand = {
  kind: 'message',
  data: new ContextMenuCommandBuilder().setName('Edit image').setType(ApplicationCommandType.Message).setContexts(InteractionContextType.Guild).toJSON(),
  ack: 'modal',
  check: checkTarget,
  async run(interaction) {
    await interaction.showModal(editModal(customId('editmessage', interaction.targetMessage.channelId, interaction.targetId)));
  },
};
