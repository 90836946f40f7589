/**
 * The fake Discord keeps Discord's rules, so a bot that passes against it does not just pass by luck: interactions
 * must be acknowledged once and within the deadline, interaction webhooks expire, REST needs the bot token, the
 * gateway wants v10 JSON without compression, and registration works globally and per guild.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { registerCommands } from '../../src/bot/register.ts';
import { FakeDiscord, type FakeChannel, Person } from './index.ts';

let fake: FakeDiscord;
let channel: FakeChannel;
let person: Person;
before(async () => {
  fake = await FakeDiscord.start({ ackDeadlineMs: 200, tokenLifetimeMs: 400 });
  const guild = fake.createGuild();
  channel = guild.channels[0] as FakeChannel;
  person = new Person(fake, fake.createUser('pat'));
  await registerCommands({ token: fake.token, discordApi: fake.apiUrl, guildId: guild.id });
});
after(async () => {
  await fake.close();
});

const callback = (id: string, token: string, body: unknown) =>
  fetch(`${fake.apiUrl}/v10/interactions/${id}/${token}/callback`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

test('commands registered for one guild are usable there; unknown commands and options are test errors', () => {
  assert.deepEqual([...fake.commands.keys()], [`guild:${channel.guild_id}`]);
  assert.throws(() => person.slash(channel, 'nope'), /no registered command/);
  assert.throws(() => person.slash(channel, 'imagine', { prompt: 'x', colour: 'red' }), /no option "colour"/);
  assert.throws(() => person.slash(channel, 'imagine', {}), /needs option "prompt"/);
});

test('an interaction is acknowledged once, within the deadline; its webhook expires', async () => {
  const ix = person.slash(channel, 'imagine', { prompt: 'x' });
  const { id, token } = ix.interaction;
  assert.equal((await callback(id, token, { type: 5, data: {} })).status, 204);
  const again = await callback(id, token, { type: 5, data: {} });
  assert.equal(again.status, 400);
  assert.equal(((await again.json()) as { code: number }).code, 40060);
  const edit = await fetch(`${fake.apiUrl}/v10/webhooks/${fake.applicationId}/${token}/messages/@original`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ content: 'done' }),
  });
  assert.equal(edit.status, 200);
  assert.equal(ix.original?.content, 'done');
  assert.equal(ix.original?.history?.length, 1, 'the edit history is kept');
  await new Promise((resolve) => setTimeout(resolve, 450));
  const late = await fetch(`${fake.apiUrl}/v10/webhooks/${fake.applicationId}/${token}/messages/@original`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ content: 'too late' }),
  });
  assert.equal(late.status, 401);

  const slow = person.slash(channel, 'imagine', { prompt: 'y' });
  await new Promise((resolve) => setTimeout(resolve, 250));
  const tooLate = await callback(slow.interaction.id, slow.interaction.token, { type: 5, data: {} });
  assert.equal(tooLate.status, 404);
  assert.equal(((await tooLate.json()) as { code: number }).code, 10062);
});

test('REST needs the bot token; unknown routes are recorded', async () => {
  assert.equal((await fetch(`${fake.apiUrl}/v10/gateway/bot`)).status, 401);
  const ok = await fetch(`${fake.apiUrl}/v10/gateway/bot`, { headers: { authorization: `Bot ${fake.token}` } });
  assert.equal(((await ok.json()) as { url: string }).url, `ws://127.0.0.1:${fake.port}/gateway`);
  await fetch(`${fake.apiUrl}/v10/guilds/1/bans`, { headers: { authorization: `Bot ${fake.token}` } });
  assert.deepEqual(fake.unhandled, ['GET /api/v10/guilds/1/bans']);
  fake.unhandled.length = 0;
});

test('the gateway: HELLO, IDENTIFY with the token, READY then GUILD_CREATE; compression is refused', async () => {
  const socket = new WebSocket(`${fake.gatewayUrl}?v=10&encoding=json`);
  const received: { op: number; t?: string; d: any }[] = [];
  socket.on('message', (raw) => received.push(JSON.parse(raw.toString())));
  await new Promise((resolve) => socket.once('open', resolve));
  await fake.waitFor(() => received.length >= 1);
  assert.equal(received[0]?.op, 10);
  socket.send(JSON.stringify({ op: 2, d: { token: fake.token, intents: 0, properties: {} } }));
  await fake.waitFor(() => received.length >= 3);
  assert.deepEqual(received.slice(1).map((p) => p.t), ['READY', 'GUILD_CREATE']);
  assert.equal(received[1]?.d.user.id, fake.bot.id);
  socket.send(JSON.stringify({ op: 1, d: 2 }));
  await fake.waitFor(() => received.some((p) => p.op === 11));
  socket.close();

  const compressed = new WebSocket(`${fake.gatewayUrl}?v=10&encoding=json&compress=zlib-stream`);
  const code = await new Promise((resolve) => compressed.once('close', resolve));
  assert.equal(code, 4012);
});
