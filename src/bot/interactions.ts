/**
 * Routes interactions to commands and components, acknowledges each as it declares (Discord allows 3 seconds), and
 * answers every failure with friendly, ephemeral text. Nothing here throws: the bot keeps running whatever happens.
 */
import { type Interaction, MessageFlags, type RepliableInteraction } from 'discord.js';
import { COMMANDS } from './commands/index.ts';
import type { Acknowledge } from './commands/types.ts';
import { COMPONENTS } from './components/index.ts';
import { parseCustomId } from './components/custom-ids.ts';
import type { BotContext } from './context.ts';
import { BotUserError, describeError, errorLine } from './errors.ts';

export async function handleInteraction(interaction: Interaction, ctx: BotContext): Promise<void> {
  if (!interaction.isRepliable()) return;
  let ack: Acknowledge = 'defer-ephemeral';
  try {
    if (interaction.isChatInputCommand() || interaction.isMessageContextMenuCommand()) {
      const command = COMMANDS.find((c) => c.data.name === interaction.commandName);
      if (command === undefined) throw new BotUserError(`I don't know /${interaction.commandName} any more (the commands may need registering again). Try /imagine.`);
      ack = command.ack;
      if (command.kind === 'slash' && interaction.isChatInputCommand()) {
        command.check?.(interaction, ctx);
        await acknowledge(interaction, ack);
        await command.run(interaction, ctx);
      } else if (command.kind === 'message' && interaction.isMessageContextMenuCommand()) {
        command.check?.(interaction, ctx);
        await acknowledge(interaction, ack);
        await command.run(interaction, ctx);
      }
      return;
    }
    if (interaction.isButton() || interaction.isModalSubmit()) {
      const parsed = parseCustomId(interaction.customId);
      if (parsed === undefined) throw new BotUserError('That button is from an older version of me and does nothing now.');
      const handler = COMPONENTS[parsed.kind];
      ack = handler.ack;
      await acknowledge(interaction, ack);
      await handler.run(interaction, parsed.args, ctx);
    }
  } catch (error) {
    const friendly = describeError(error, ctx.logger, {
      interaction: interaction.id,
      user: interaction.user.id,
      what: interaction.isCommand() ? interaction.commandName : interaction.isMessageComponent() || interaction.isModalSubmit() ? interaction.customId : 'other',
    });
    await answerError(interaction, ack, errorLine(friendly)).catch((answerFailure: unknown) =>
      ctx.logger.warn({ err: answerFailure, interaction: interaction.id }, 'could not tell the person about an error'),
    );
  }
}

async function acknowledge(interaction: RepliableInteraction, ack: Acknowledge): Promise<void> {
  switch (ack) {
    case 'defer':
      await interaction.deferReply();
      break;
    case 'defer-ephemeral':
      await interaction.deferReply({ flags: MessageFlags.Ephemeral });
      break;
    case 'update':
      if (interaction.isMessageComponent()) await interaction.deferUpdate();
      else await interaction.deferReply({ flags: MessageFlags.Ephemeral });
      break;
    case 'modal':
      break;
  }
}

/** Errors are seen only by the person: a public placeholder is removed and the text comes as an ephemeral follow-up. */
async function answerError(interaction: RepliableInteraction, ack: Acknowledge, text: string): Promise<void> {
  if (!interaction.deferred && !interaction.replied) {
    await interaction.reply({ content: text, flags: MessageFlags.Ephemeral });
    return;
  }
  if (interaction.ephemeral === true && ack !== 'update') {
    await interaction.editReply({ content: text, components: [], files: [] });
    return;
  }
  if (ack === 'defer') await interaction.deleteReply().catch(() => undefined);
  await interaction.followUp({ content: text, flags: MessageFlags.Ephemeral });
}
