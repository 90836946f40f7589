/**
 * The sampling options of the image commands: `guidance` (the API's `sampling.promptGuidance`) and `check` (its
 * `sampling.selfCheck`: the model reads the image it wrote and writes more when it misses the prompt).
 */
import type { ChatInputCommandInteraction, SlashCommandBooleanOption, SlashCommandNumberOption } from 'discord.js';
import type { ImageSampling } from '../api-client.ts';

export const GUIDANCE_OPTION = 'guidance';
export const CHECK_OPTION = 'check';

export function guidanceOption(option: SlashCommandNumberOption): SlashCommandNumberOption {
  return option
    .setName(GUIDANCE_OPTION)
    .setDescription("How closely the image follows your text: 1 is off, higher follows harder (default: the model's)")
    .setMinValue(0)
    .setMaxValue(10);
}

export function checkOption(option: SlashCommandBooleanOption): SlashCommandBooleanOption {
  return option
    .setName(CHECK_OPTION)
    .setDescription('Let the model check its image and try again when it misses your text (slower; default: off)');
}

/** The API input's `sampling` for what the user chose, or nothing (the model's defaults). */
export function imageSampling(interaction: ChatInputCommandInteraction): { sampling?: ImageSampling } {
  const guidance = interaction.options.getNumber(GUIDANCE_OPTION);
  const check = interaction.options.getBoolean(CHECK_OPTION) === true;
  const sampling: ImageSampling = { ...(guidance === null ? {} : { promptGuidance: guidance }), ...(check ? { selfCheck: true } : {}) };
  return Object.keys(sampling).length === 0 ? {} : { sampling };
}
