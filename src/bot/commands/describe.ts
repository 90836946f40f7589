/** `/describe image [question]`: image → text. */
import { InteractionContextType, SlashCommandBuilder } from 'discord.js';
import { attachmentInput, checkAttachment } from '../images.ts';
import { runTurn } from '../results.ts';
import { InteractionSurface } from '../surfaces.ts';
import { actorOf, DEFAULT_QUESTION, type SlashCommand } from './types.ts';

export const describe: SlashCommand = {
  kind: 'slash',
  data: new SlashCommandBuilder()
    .setContexts(InteractionContextType.Guild)
    .setName('describe')
    .setDescription('Describe an image, or answer a question about it')
    .addAttachmentOption((o) => o.setName('image').setDescription('A PNG or JPEG image').setRequired(true))
    .addStringOption((o) => o.setName('question').setDescription(`What to ask (default: "${DEFAULT_QUESTION}")`).setMaxLength(2000))
    .toJSON(),
  ack: 'defer',
  check(interaction, ctx) {
    checkAttachment(interaction.options.getAttachment('image', true), ctx.api.knownLimits());
  },
  async run(interaction, ctx) {
    const actor = actorOf(interaction.user);
    const question = interaction.options.getString('question') ?? DEFAULT_QUESTION;
    const image = await attachmentInput(ctx, interaction.options.getAttachment('image', true));
    await runTurn(ctx, actor, new InteractionSurface(interaction), `Looking at the image`, () => ctx.api.understand(actor, { prompt: question, image }));
  },
};
