/** The bot's configuration, from environment variables, validated once at start (every problem listed at once). */

export interface BotConfig {
  /** The bot token from the Discord developer portal (`DISCORD_TOKEN`). Required. */
  discordToken: string;
  /** Base URL of the Dialect API, GraphQL at `/graphql` (`DIALECT_API_URL`). Defaults to http://127.0.0.1:4000. */
  apiUrl: string;
  /** The bot's API key with the `act_as_discord` scope (`DIALECT_API_KEY`); optional only for an API on loopback with no keys. */
  apiKey: string | undefined;
  /** Base URL of the web page for links under results (`DIALECT_PUBLIC_URL`). Defaults to the API's URL. */
  publicUrl: string;
  /** Discord's REST root (`DISCORD_API_URL`), for proxies and tests. Defaults to https://discord.com/api. */
  discordApi: string | undefined;
  /** Least ms between two progress edits of a message (`DIALECT_BOT_PROGRESS_MS`). Defaults to 1,500. */
  progressIntervalMs: number;
  /** pino level (`LOG_LEVEL`). Defaults to info. */
  logLevel: string;
}

export class BotConfigError extends Error {
  override readonly name = 'BotConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

export function loadBotConfig(env: NodeJS.ProcessEnv = process.env): BotConfig {
  const problems: string[] = [];
  const str = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const url = (name: string, fallback: string | undefined): string | undefined => {
    const value = str(name) ?? fallback;
    if (value === undefined) return undefined;
    try {
      const parsed = new URL(value);
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('not http(s)');
    } catch {
      problems.push(`${name} must be an http(s) URL, not "${value}"`);
    }
    return value.replace(/\/+$/, '');
  };
  const discordToken = str('DISCORD_TOKEN');
  if (discordToken === undefined) problems.push('DISCORD_TOKEN is required (the bot token from the Discord developer portal)');
  const apiUrl = url('DIALECT_API_URL', 'http://127.0.0.1:4000') as string;
  const apiKey = str('DIALECT_API_KEY');
  let loopback = false;
  try {
    loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(new URL(apiUrl).hostname);
  } catch {
    // reported above
  }
  if (apiKey === undefined && !loopback) {
    problems.push('DIALECT_API_KEY is required for an API that is not on this machine (make one with: dialect keys create --scope act_as_discord)');
  }
  const progressText = str('DIALECT_BOT_PROGRESS_MS') ?? '1500';
  const progressIntervalMs = Number(progressText);
  if (!/^\d+$/.test(progressText) || progressIntervalMs > 60_000) problems.push(`DIALECT_BOT_PROGRESS_MS must be 0 … 60000, not "${progressText}"`);
  const config: BotConfig = {
    discordToken: discordToken ?? '',
    apiUrl,
    apiKey,
    publicUrl: url('DIALECT_PUBLIC_URL', apiUrl) as string,
    discordApi: url('DISCORD_API_URL', undefined),
    progressIntervalMs,
    logLevel: str('LOG_LEVEL') ?? 'info',
  };
  if (problems.length > 0) throw new BotConfigError(problems);
  return config;
}
