/**
 * `npm run bot:register [-- --guild ID]`: registers the bot's commands with Discord, globally (may take up to an hour
 * to show everywhere) or in one guild (at once; best while developing). A separate step, never done at every start.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REST, Routes } from 'discord.js';
import { commandDefinitions } from './commands/index.ts';

export interface RegisterOptions {
  token: string;
  /** Register in this guild only. */
  guildId?: string;
  /** Discord's REST root; defaults to Discord's. */
  discordApi?: string;
}

/** Replaces the application's commands with the bot's list; resolves with the names registered. */
export async function registerCommands(options: RegisterOptions): Promise<string[]> {
  const rest = new REST(options.discordApi === undefined ? {} : { api: options.discordApi }).setToken(options.token);
  const application = (await rest.get(Routes.currentApplication())) as { id: string };
  const route =
    options.guildId === undefined ? Routes.applicationCommands(application.id) : Routes.applicationGuildCommands(application.id, options.guildId);
  const registered = (await rest.put(route, { body: commandDefinitions() })) as { name: string }[];
  return registered.map((command) => command.name);
}

export function parseRegisterArgs(argv: readonly string[]): { guildId?: string } {
  const index = argv.indexOf('--guild');
  if (index === -1) return {};
  const guildId = argv[index + 1];
  if (guildId === undefined || !/^\d{5,32}$/.test(guildId)) throw new Error('--guild needs a guild id (a number; right-click the server → Copy Server ID)');
  return { guildId };
}

async function main(): Promise<void> {
  const token = process.env.DISCORD_TOKEN?.trim();
  if (token === undefined || token === '') {
    process.stderr.write('dialect bot:register: DISCORD_TOKEN is required\n');
    process.exit(2);
  }
  let args;
  try {
    args = parseRegisterArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`dialect bot:register: ${(error as Error).message}\n`);
    process.exit(2);
  }
  const guildId = args.guildId ?? (process.env.DISCORD_GUILD_ID?.trim() || undefined);
  const discordApi = process.env.DISCORD_API_URL?.trim() || undefined;
  const names = await registerCommands({ token, ...(guildId === undefined ? {} : { guildId }), ...(discordApi === undefined ? {} : { discordApi }) });
  process.stdout.write(`registered ${names.length} commands ${guildId === undefined ? 'globally' : `in guild ${guildId}`}: ${names.join(', ')}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`dialect bot:register: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
