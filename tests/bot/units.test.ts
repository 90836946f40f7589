/** The bot's pure parts: what a message asks for, custom ids, rendering, progress text, configuration, arguments. */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import sharp from 'sharp';
import { ApiUnavailableError, ApiUserError, DialectApi } from '../../src/bot/api-client.ts';
import { customId, imageFileName, imageIdFromFileName, parseCustomId } from '../../src/bot/components/custom-ids.ts';
import { BotConfigError, loadBotConfig } from '../../src/bot/config.ts';
import { checkAttachment } from '../../src/bot/images.ts';
import { chooseTask, withoutMentions } from '../../src/bot/messages.ts';
import { parseRegisterArgs } from '../../src/bot/register.ts';
import { tokenGridPng, tokenGridText, upscalePng } from '../../src/bot/render.ts';
import { escapeMarkdown, progressLine } from '../../src/bot/results.ts';
import { InteractionSurface } from '../../src/bot/surfaces.ts';

test('chooseTask: questions are answered, instructions edit, the rest is drawn', () => {
  assert.equal(chooseTask('what color is the circle?', 'latest'), 'UNDERSTAND');
  assert.equal(chooseTask('Describe the image.', 'attached'), 'UNDERSTAND');
  assert.equal(chooseTask('how many shapes are there', 'latest'), 'UNDERSTAND');
  assert.equal(chooseTask('make the circle blue', 'latest'), 'EDIT');
  assert.equal(chooseTask('please move the square to the top left', 'latest'), 'EDIT');
  assert.equal(chooseTask('blue please', 'attached'), 'EDIT', 'words with an attached image edit it');
  assert.equal(chooseTask('a red circle', 'latest'), 'GENERATE');
  assert.equal(chooseTask('what is a circle?', 'none'), 'GENERATE', 'no image: draw');
  assert.equal(withoutMentions('<@123> make it <@!123> red', '123'), 'make it red');
});

test('custom ids: round trip, the 100-character limit, unknown kinds; image file names', () => {
  const id = '0b8f1c1e-3c1d-4c55-9c1e-2b4a8f1c1e3c';
  assert.deepEqual(parseCustomId(customId('reroll', id)), { kind: 'reroll', args: [id] });
  assert.deepEqual(parseCustomId(customId('editmessage', '1', '2')), { kind: 'editmessage', args: ['1', '2'] });
  assert.equal(parseCustomId('other:1'), undefined);
  assert.throws(() => customId('history', 'x'.repeat(100)));
  assert.equal(imageIdFromFileName(imageFileName(id)), id);
  assert.equal(imageIdFromFileName('photo.png'), undefined);
});

test('upscalePng is pixel-exact by an integer factor and never shrinks', async () => {
  const raw = Buffer.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9]);
  const png = await sharp(raw, { raw: { width: 2, height: 2, channels: 3 } }).png().toBuffer();
  const up = await upscalePng(png, 512);
  assert.equal(up.factor, 256);
  const { data, info } = await sharp(up.png).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height], [512, 512]);
  const at = (x: number, y: number) => [...data.subarray((y * 512 + x) * info.channels, (y * 512 + x) * info.channels + 3)];
  assert.deepEqual(at(0, 0), [255, 0, 0]);
  assert.deepEqual(at(255, 255), [255, 0, 0]);
  assert.deepEqual(at(256, 0), [0, 255, 0]);
  assert.deepEqual(at(0, 256), [0, 0, 255]);
  assert.deepEqual(at(511, 511), [9, 9, 9]);
  const big = await sharp({ create: { width: 600, height: 600, channels: 3, background: 'white' } }).png().toBuffer();
  assert.equal((await upscalePng(big, 512)).factor, 1);
});

test('token grids as text (aligned rows) and as a picture (one cell per token)', async () => {
  assert.equal(tokenGridText([1, 22, 333, 4], 2), '  1  22\n333   4');
  const png = await tokenGridPng([1, 2, 1, 2], 2, 4);
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height], [8, 8]);
  const px = (x: number, y: number) => [...data.subarray((y * 8 + x) * info.channels, (y * 8 + x) * info.channels + 3)];
  assert.deepEqual(px(0, 0), px(0, 7), 'same token, same colour');
  assert.notDeepEqual(px(0, 0), px(7, 0));
});

test('progress text and markdown escaping', () => {
  const job = { id: 'j', status: 'RUNNING', task: 'GENERATE', stage: 'DECODE', done: 8, total: 16, error: null } as const;
  assert.equal(progressLine('Generating “x”', job), '⏳ Generating “x” · writing tokens 50% ▰▰▰▰▰▱▱▱▱▱');
  assert.equal(progressLine('Generating', { ...job, stage: 'QUEUED', done: 0, total: 0 }), '⏳ Generating · waiting in the queue');
  assert.equal(escapeMarkdown('**a** _b_ `c`'), '\\*\\*a\\*\\* \\_b\\_ \\`c\\`');
});

test('attachment checks: PNG and JPEG within the limit only', () => {
  const limits = { maxUploadBytes: 1000, maxUploadPixels: 100, maxPromptChars: 10, maxPageSize: 10 };
  checkAttachment({ name: 'a.png', contentType: 'image/png', size: 1000 }, limits);
  checkAttachment({ name: 'a.jpg', contentType: 'image/jpeg', size: 10 }, limits);
  checkAttachment({ name: 'a.jpeg', contentType: null, size: 10 }, limits);
  assert.throws(() => checkAttachment({ name: 'a.webp', contentType: 'image/webp', size: 10 }, limits), /image\/webp file/);
  assert.throws(() => checkAttachment({ name: 'a.png', contentType: 'image/png', size: 1001 }, limits), /up to 1000 bytes/);
});

test('configuration: required token, the API key unless the API is on loopback, URLs checked', () => {
  assert.throws(() => loadBotConfig({}), (error: unknown) => error instanceof BotConfigError && /DISCORD_TOKEN is required/.test(error.message));
  const local = loadBotConfig({ DISCORD_TOKEN: 't' });
  assert.equal(local.apiUrl, 'http://127.0.0.1:4000');
  assert.equal(local.publicUrl, 'http://127.0.0.1:4000');
  assert.equal(local.apiKey, undefined);
  assert.throws(() => loadBotConfig({ DISCORD_TOKEN: 't', DIALECT_API_URL: 'https://api.example' }), /DIALECT_API_KEY is required/);
  assert.throws(() => loadBotConfig({ DISCORD_TOKEN: 't', DIALECT_API_URL: 'ftp://x' }), /must be an http\(s\) URL/);
  const remote = loadBotConfig({ DISCORD_TOKEN: 't', DIALECT_API_URL: 'https://api.example/', DIALECT_API_KEY: 'k', DIALECT_PUBLIC_URL: 'https://dialect.example' });
  assert.equal(remote.apiUrl, 'https://api.example');
  assert.equal(remote.publicUrl, 'https://dialect.example');
  assert.throws(() => loadBotConfig({ DISCORD_TOKEN: 't', DIALECT_BOT_PROGRESS_MS: 'soon' }), /DIALECT_BOT_PROGRESS_MS/);
});

test('bot:register arguments: globally by default, --guild ID for one guild', () => {
  assert.deepEqual(parseRegisterArgs([]), {});
  assert.deepEqual(parseRegisterArgs(['--guild', '123456789012345678']), { guildId: '123456789012345678' });
  assert.throws(() => parseRegisterArgs(['--guild']), /needs a guild id/);
});

test('a public reply older than 14 minutes moves to a channel message (interaction tokens last 15)', async () => {
  const calls: string[] = [];
  let now = 1_000_000;
  const channelMessage = { edit: async (body: { content: string }) => void calls.push(`message.edit ${body.content}`) };
  const interaction = {
    createdTimestamp: now,
    ephemeral: false,
    channel: { isSendable: () => true, send: async (body: { content: string }) => (calls.push(`channel.send ${body.content}`), channelMessage) },
    editReply: async (body: { content: string }) => void calls.push(`editReply ${body.content}`),
  };
  const surface = new InteractionSurface(interaction as never, () => now);
  await surface.show({ content: 'a' });
  now += 14 * 60_000 + 1;
  await surface.show({ content: 'b' });
  await surface.show({ content: 'c' });
  assert.deepEqual(calls, ['editReply a', 'channel.send b', 'message.edit c']);
});

test('progress falls back to polling job(id) when the WebSocket is refused', async () => {
  const states = ['QUEUED', 'RUNNING', 'SUCCEEDED'];
  let polls = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      assert.match(JSON.parse(body).query, /job\(id: \$id\)/);
      assert.equal(req.headers['x-dialect-discord-user'], '42');
      const status = states[Math.min(polls, states.length - 1)];
      polls += 1;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ data: { job: { id: 'j', status, task: 'GENERATE', stage: status === 'SUCCEEDED' ? 'DONE' : 'DECODE', done: polls, total: 3, error: null } } }));
    });
  });
  server.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 403 Forbidden\r\n\r\n'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const api = new DialectApi({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, apiKey: 'k', pollIntervalMs: 10 });
    const seen: string[] = [];
    const final = await api.follow({ discordId: '42', name: 'x' }, 'j', (job) => seen.push(job.status));
    assert.equal(final.status, 'SUCCEEDED');
    assert.deepEqual(seen, ['QUEUED', 'RUNNING', 'SUCCEEDED']);
  } finally {
    server.close();
  }
});

test('the API client: unreachable is ApiUnavailableError, payload errors are ApiUserError with their code', async () => {
  const down = new DialectApi({ url: 'http://127.0.0.1:9', apiKey: undefined });
  await assert.rejects(down.turn({ discordId: '1', name: 'x' }, 't'), ApiUnavailableError);
  const server = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ data: { generate: { turn: null, job: null, errors: [{ code: 'QUEUE_FULL', message: 'busy', field: null }] } } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const api = new DialectApi({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, apiKey: 'k' });
    await assert.rejects(api.generate({ discordId: '1', name: 'x' }, { prompt: 'p' }), (error: unknown) => error instanceof ApiUserError && error.code === 'QUEUE_FULL');
  } finally {
    server.close();
  }
});
