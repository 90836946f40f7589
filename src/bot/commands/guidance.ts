/** The `guidance` option of the image commands: the API's `sampling.promptGuidance`. */
import type { SlashCommandNumberOption } from 'discord.js';

export const GUIDANCE_OPTION = 'guidance';

export function guidanceOption(option: SlashCommandNumberOption): SlashCommandNumberOption {
  return option
    .setName(GUIDANCE_OPTION)
    .setDescription("How closely the image follows your text: 1 is off, higher follows harder (default: the model's)")
    .setMinValue(0)
    .setMaxValue(10);
}

/** The API input's `sampling` for a guidance the user chose, or nothing (the model's default). */
export function guidanceSampling(guidance: number | null): { sampling?: { promptGuidance: number } } {
  return guidance === null ? {} : { sampling: { promptGuidance: guidance } };
}
