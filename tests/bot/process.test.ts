/**
 * The commands as people run them: `npm run bot:register` (src/bot/register.ts) and `npm run bot` (src/bot/main.ts)
 * as child processes, against an in-process server and the fake Discord; a configuration error exits with 2.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { getOrCreateOwner } from '../../src/db/server-queries.ts';
import { createApiKey } from '../../src/db/users.ts';
import type { DialectServer } from '../../src/server/app.ts';
import { openTestDatabase, type TestDatabase } from '../db/harness.ts';
import { type FakeChannel, FakeDiscord, type FakeGuild, Person } from '../discord-fake/index.ts';
import { startTestServer } from '../server/helpers.ts';
import { isImageResult } from './harness.ts';

let handle: TestDatabase;
let server: DialectServer;
let fake: FakeDiscord;
let guild: FakeGuild;
let apiKey: string;
before(async () => {
  handle = await openTestDatabase('pglite');
  server = await startTestServer(handle.database, { LOG_LEVEL: 'warn' });
  ({ key: apiKey } = await createApiKey(handle.database, (await getOrCreateOwner(handle.database)).id, { name: 'bot', scopes: ['act_as_discord'] }));
  fake = await FakeDiscord.start();
  guild = fake.createGuild();
});
after(async () => {
  await fake.close();
  await server.stop();
  await handle.dispose();
});

function run(script: string, args: string[], env: Record<string, string>): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
  return { child, done };
}

test('npm run bot:register -- --guild ID registers the commands in that guild', async () => {
  const { done } = run('src/bot/register.ts', ['--guild', guild.id], { DISCORD_TOKEN: fake.token, DISCORD_API_URL: fake.apiUrl });
  const { code, stdout, stderr } = await done;
  assert.equal(code, 0, stderr);
  assert.match(stdout, new RegExp(`registered 6 commands in guild ${guild.id}: imagine, describe, edit, history, Describe image, Edit image`));
  assert.equal(fake.commands.get(`guild:${guild.id}`)?.length, 6);
});

test('npm run bot serves people until SIGTERM, then exits cleanly', async () => {
  const { child, done } = run('src/bot/main.ts', [], {
    DISCORD_TOKEN: fake.token,
    DISCORD_API_URL: fake.apiUrl,
    DIALECT_API_URL: server.url,
    DIALECT_API_KEY: apiKey,
    DIALECT_BOT_PROGRESS_MS: '0',
  });
  try {
    await fake.waitFor(() => fake.connectedSessions === 1, 30_000, 'the bot process to connect');
    const person = new Person(fake, fake.createUser('zoe'));
    await person.slash(guild.channels[0] as FakeChannel, 'imagine', { prompt: 'a red circle', seed: 2 }).waitForOriginal(isImageResult);
  } finally {
    child.kill('SIGTERM');
  }
  const { code, stdout } = await done;
  assert.equal(code, 0);
  assert.match(stdout, /"msg":"bot ready"/);
});

test('a configuration error names the variable and exits with 2', async () => {
  const { code, stderr } = await run('src/bot/main.ts', [], { DIALECT_API_URL: 'https://api.example' }).done;
  assert.equal(code, 2);
  assert.match(stderr, /DISCORD_TOKEN is required/);
  assert.match(stderr, /DIALECT_API_KEY is required/);
});

test('a login Discord refuses ends the process with a hint: a wrong token, the Message Content intent off', async () => {
  const env = { DISCORD_API_URL: fake.apiUrl, DIALECT_API_URL: server.url, DIALECT_API_KEY: apiKey };
  const wrong = await run('src/bot/main.ts', [], { ...env, DISCORD_TOKEN: 'not-the-token' }).done;
  assert.equal(wrong.code, 1);
  assert.match(wrong.stdout, /check DISCORD_TOKEN/);

  const strict = await FakeDiscord.start({ messageContentIntent: false });
  try {
    const refused = await run('src/bot/main.ts', [], { ...env, DISCORD_TOKEN: strict.token, DISCORD_API_URL: strict.apiUrl }).done;
    assert.equal(refused.code, 1);
    assert.match(refused.stdout, /Message Content Intent/);
  } finally {
    await strict.close();
  }
});
