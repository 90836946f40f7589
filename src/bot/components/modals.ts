/** The edit modal: one text input, the instruction. */
import { LabelBuilder, ModalBuilder, TextInputBuilder, TextInputStyle } from 'discord.js';

export const INSTRUCTION_INPUT = 'instruction';

export function editModal(customId: string): ModalBuilder {
  return new ModalBuilder()
    .setCustomId(customId)
    .setTitle('Edit image')
    .addLabelComponents(
      new LabelBuilder()
        .setLabel('Instruction')
        .setDescription('What to change, e.g. "make the circle blue"')
        .setTextInputComponent(
          new TextInputBuilder().setCustomId(INSTRUCTION_INPUT).setStyle(TextInputStyle.Short).setRequired(true).setMaxLength(1000).setPlaceholder('make the circle blue'),
        ),
    );
}
