/** Every command the bot has, listed explicitly: what `npm run bot:register` registers and what the bot answers. */
import { describeImage, editImage } from './context-menus.ts';
import { describe } from './describe.ts';
import { edit } from './edit.ts';
import { history } from './history.ts';
import { imagine } from './imagine.ts';
import type { Command } from './types.ts';

export const COMMANDS: readonly Command[] = [imagine, describe, edit, history, describeImage, editImage];

export function commandDefinitions() {
  return COMMANDS.map((command) => command.data);
}
