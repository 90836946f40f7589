/**
 * Every error path ends in friendly, ephemeral text and a bot that keeps working: a wrong attachment type, an
 * attachment too large (bytes, checked before acknowledging; pixels, refused by the server), an unreadable image, a
 * full queue, a rate limit, the API down and back, an unexpected fault (a report id in the text and the logs), the
 * gateway dropping (resumed, heartbeats go on) and Discord rate-limiting an edit.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { API_DOWN } from '../../src/bot/errors.ts';
import type { InteractionHandle } from '../discord-fake/index.ts';
import { type Deployment, isImageResult, startDeployment } from './harness.ts';

let d: Deployment;
before(async () => {
  d = await startDeployment({
    heartbeatIntervalMs: 150,
    serverEnv: {
      DIALECT_MAX_UPLOAD_BYTES: '20000',
      DIALECT_MAX_UPLOAD_PIXELS: '10000',
      DIALECT_RATE_PER_MINUTE: '1',
      DIALECT_RATE_BURST: '3',
    },
  });
});
after(async () => {
  await d?.dispose();
});

/** The ephemeral error the person saw: an immediate reply, or a follow-up after the placeholder was removed. */
async function ephemeralError(ix: InteractionHandle): Promise<string> {
  const ack = await ix.acknowledged();
  if (ack.type === 4) {
    assert.equal(Number(ack.data?.flags) & 64, 64, 'ephemeral');
    return String(ack.data?.content);
  }
  const message = await ix.waitForMessage((m) => m.content.startsWith('⚠️'));
  assert.equal(message.flags & 64, 64, 'ephemeral');
  if (ack.type === 5 && (Number(ack.data?.flags) & 64) === 0) assert.equal(ix.original?.deleted, true, 'the public placeholder is removed');
  return message.content;
}

test('a wrong attachment type is refused at once (before acknowledging), for /describe and /edit', async () => {
  const p = d.person('mia');
  const text = d.fake.upload(d.channel.id, 'notes.txt', Buffer.from('not an image'), 'text/plain');
  const describeIx = p.slash(d.channel, 'describe', { image: text });
  assert.match(await ephemeralError(describeIx), /⚠️ `notes\.txt` is a text\/plain file: attach a PNG or JPEG/);
  assert.equal((await describeIx.acknowledged()).type, 4);
  const gif = d.fake.upload(d.channel.id, 'anim.gif', Buffer.from('GIF89a'), 'image/gif');
  assert.match(await ephemeralError(p.slash(d.channel, 'edit', { image: gif, instruction: 'make it red' })), /image\/gif file: attach a PNG or JPEG/);
});

test("an attachment over the server's byte limit is refused at once, from the limits the bot read", async () => {
  const p = d.person('noah');
  const noise = await sharp(randomBytes(120 * 120 * 3), { raw: { width: 120, height: 120, channels: 3 } }).png().toBuffer();
  assert.ok(noise.length > 20000);
  const big = d.fake.upload(d.channel.id, 'big.png', noise, 'image/png');
  const ix = p.slash(d.channel, 'describe', { image: big });
  assert.match(await ephemeralError(ix), /`big\.png` is \d+ KB; Dialect accepts images up to 20 KB/);
});

test('an image with too many pixels is refused by the server, and said kindly', async () => {
  const p = d.person('olga');
  const wide = await sharp({ create: { width: 200, height: 200, channels: 3, background: { r: 255, g: 255, b: 255 } } }).png().toBuffer();
  assert.ok(wide.length < 20000);
  const ix = p.slash(d.channel, 'describe', { image: d.fake.upload(d.channel.id, 'wide.png', wide, 'image/png') });
  assert.match(await ephemeralError(ix), /too large for Dialect/);
});

test('a file that claims to be a PNG but is not is refused kindly', async () => {
  const p = d.person('pia');
  const ix = p.slash(d.channel, 'edit', { image: d.fake.upload(d.channel.id, 'broken.png', Buffer.from('definitely not a png'), 'image/png'), instruction: 'make it red' });
  assert.match(await ephemeralError(ix), /not an image Dialect can read/);
});

test('a full queue is said kindly, and the next request works once it drains', async () => {
  const p = d.person('quinn');
  const runner = d.server.services.runner;
  Object.defineProperty(runner, 'queueDepth', { get: () => 1_000_000, configurable: true });
  try {
    assert.match(await ephemeralError(p.slash(d.channel, 'imagine', { prompt: 'a red circle' })), /busy right now \(the queue is full\)/);
  } finally {
    delete (runner as unknown as Record<string, unknown>).queueDepth;
  }
  await p.slash(d.channel, 'imagine', { prompt: 'a red circle' }).waitForOriginal(isImageResult);
});

test("a person's rate limit is said kindly, and limits only that person", async () => {
  const fast = d.person('rapid');
  for (let i = 0; i < 3; i += 1) await fast.slash(d.channel, 'imagine', { prompt: `circle ${i}` }).waitForOriginal(isImageResult);
  assert.match(await ephemeralError(fast.slash(d.channel, 'imagine', { prompt: 'one more' })), /going a bit fast/);
  await d.person('slow').slash(d.channel, 'imagine', { prompt: 'a square' }).waitForOriginal(isImageResult);
});

test('an unexpected fault gets a report id, the same one in the logs', async () => {
  const p = d.person('sam');
  const turns = d.server.services.turns;
  const original = turns.request.bind(turns);
  turns.request = async () => {
    throw new Error('boom inside the server');
  };
  try {
    const text = await ephemeralError(p.slash(d.channel, 'imagine', { prompt: 'a red circle' }));
    const reportId = /report id `([0-9a-f]{8})`/.exec(text)?.[1];
    assert.ok(reportId !== undefined, text);
    assert.doesNotMatch(text, /boom/, 'no internals');
    assert.ok(d.botLogs.lines.some((line) => line.reportId === reportId && line.level === 50));
  } finally {
    turns.request = original;
  }
});

test('the API down: a friendly error, the bot keeps running, and works again when the API is back', async () => {
  const p = d.person('tara');
  const made = await p.slash(d.channel, 'imagine', { prompt: 'a blue square', seed: 5 }).waitForOriginal(isImageResult);
  await d.stopServer();
  try {
    assert.equal(await ephemeralError(p.slash(d.channel, 'imagine', { prompt: 'a red circle' })), `⚠️ ${API_DOWN}`);
    // A reply-to-edit has no interaction: the bot answers in the channel.
    const reply = p.say(d.channel, 'make the square red', { replyTo: made });
    const answer = await d.fake.waitFor(() => d.fake.channelMessages(d.channel.id).find((m) => m.message_reference?.message_id === reply.id));
    assert.equal(answer.content, `⚠️ ${API_DOWN}`);
    assert.equal(d.fake.connectedSessions, 1, 'still connected to Discord');
  } finally {
    await d.restartServer();
  }
  await p.slash(d.channel, 'imagine', { prompt: 'a red circle' }).waitForOriginal(isImageResult);
});

test('heartbeats flow, and a dropped gateway connection is resumed without losing commands', async () => {
  await d.fake.waitFor(() => d.fake.gatewayStats.heartbeats >= 2, 5000, 'two heartbeats');
  const identifies = d.fake.gatewayStats.identifies;
  d.fake.dropGateway(4000);
  await d.fake.waitFor(() => d.fake.gatewayStats.resumes >= 1 && d.fake.connectedSessions === 1, 10_000, 'a resumed session');
  assert.equal(d.fake.gatewayStats.identifies, identifies, 'resumed, not identified again');
  await d.person('uma').slash(d.channel, 'imagine', { prompt: 'after the drop' }).waitForOriginal(isImageResult);
});

test('a gateway closed for good (session invalid) is re-identified', async () => {
  const identifies = d.fake.gatewayStats.identifies;
  d.fake.dropGateway(1000);
  await d.fake.waitFor(() => d.fake.gatewayStats.identifies > identifies && d.fake.connectedSessions === 1, 15_000, 'a new session');
  await d.person('vic').slash(d.channel, 'imagine', { prompt: 'after the reconnect' }).waitForOriginal(isImageResult);
});

test('Discord down and back (REST and gateway): the bot reconnects by itself', async () => {
  const port = d.fake.port;
  const connections = d.fake.gatewayStats.connections;
  await d.fake.close();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  await d.fake.listen(port);
  await d.fake.waitFor(() => d.fake.gatewayStats.connections > connections && d.fake.connectedSessions === 1, 30_000, 'the bot to reconnect');
  await d.person('xavi').slash(d.channel, 'imagine', { prompt: 'after the outage' }).waitForOriginal(isImageResult);
});

test('Discord rate-limiting an edit (429) is waited out by discord.js, and the result still arrives', async () => {
  d.fake.failNext(/^PATCH \/api\/v10\/webhooks\//, 429, { message: 'You are being rate limited.', retry_after: 0.2, global: false, code: 0 }, { 'retry-after': '1', 'x-ratelimit-scope': 'user' });
  const before = d.fake.requests.filter((r) => r.status === 429).length;
  await d.person('will').slash(d.channel, 'imagine', { prompt: 'patience' }).waitForOriginal(isImageResult);
  assert.equal(d.fake.requests.filter((r) => r.status === 429).length, before + 1);
});

test('no request went to a route the fake does not model', () => {
  assert.deepEqual(d.fake.unhandled, []);
});
