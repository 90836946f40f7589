/** `/imagine prompt [scale] [seed] [guidance] [check]`: text → image. */
import { InteractionContextType, SlashCommandBuilder } from 'discord.js';
import { runTurn } from '../results.ts';
import { InteractionSurface } from '../surfaces.ts';
import { checkOption, guidanceOption, imageSampling } from './image-options.ts';
import { actorOf, type SlashCommand } from './types.ts';

export const imagine: SlashCommand = {
  kind: 'slash',
  data: new SlashCommandBuilder()
    .setContexts(InteractionContextType.Guild)
    .setName('imagine')
    .setDescription('Generate an image from a prompt')
    .addStringOption((o) => o.setName('prompt').setDescription('What to draw, e.g. "a large red circle in the center"').setRequired(true).setMaxLength(2000))
    .addIntegerOption((o) =>
      o
        .setName('scale')
        .setDescription('Image-token scale: 1 (most tokens, finest), 2 or 3 (fewest)')
        .addChoices({ name: '1 (finest)', value: 1 }, { name: '2', value: 2 }, { name: '3 (coarsest)', value: 3 }),
    )
    .addIntegerOption((o) => o.setName('seed').setDescription('Seed for a repeatable image (0 … 2147483647)').setMinValue(0).setMaxValue(2147483647))
    .addNumberOption(guidanceOption)
    .addBooleanOption(checkOption)
    .toJSON(),
  ack: 'defer',
  async run(interaction, ctx) {
    const actor = actorOf(interaction.user);
    const prompt = interaction.options.getString('prompt', true);
    const scale = interaction.options.getInteger('scale') ?? undefined;
    const seed = interaction.options.getInteger('seed') ?? undefined;
    const sampling = imageSampling(interaction);
    await runTurn(ctx, actor, new InteractionSurface(interaction), `Generating “${prompt.slice(0, 80)}”`, () =>
      ctx.api.generate(actor, { prompt, ...(scale === undefined ? {} : { scale }), ...(seed === undefined ? {} : { seed }), ...sampling }),
    );
  },
};
