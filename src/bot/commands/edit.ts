/** `/edit image instruction [guidance] [check]`: image + text → image. */
import { InteractionContextType, SlashCommandBuilder } from 'discord.js';
import { attachmentInput, checkAttachment } from '../images.ts';
import { runTurn } from '../results.ts';
import { InteractionSurface } from '../surfaces.ts';
import { checkOption, guidanceOption, imageSampling } from './image-options.ts';
import { actorOf, type SlashCommand } from './types.ts';

export const edit: SlashCommand = {
  kind: 'slash',
  data: new SlashCommandBuilder()
    .setContexts(InteractionContextType.Guild)
    .setName('edit')
    .setDescription('Edit an image with an instruction')
    .addAttachmentOption((o) => o.setName('image').setDescription('A PNG or JPEG image').setRequired(true))
    .addStringOption((o) => o.setName('instruction').setDescription('e.g. "make the circle blue"').setRequired(true).setMaxLength(2000))
    .addNumberOption(guidanceOption)
    .addBooleanOption(checkOption)
    .toJSON(),
  ack: 'defer',
  check(interaction, ctx) {
    checkAttachment(interaction.options.getAttachment('image', true), ctx.api.knownLimits());
  },
  async run(interaction, ctx) {
    const actor = actorOf(interaction.user);
    const instruction = interaction.options.getString('instruction', true);
    const image = await attachmentInput(ctx, interaction.options.getAttachment('image', true));
    const sampling = imageSampling(interaction);
    await runTurn(ctx, actor, new InteractionSurface(interaction), `Editing: “${instruction.slice(0, 80)}”`, () =>
      ctx.api.edit(actor, { prompt: instruction, image, ...sampling }),
    );
  },
};
