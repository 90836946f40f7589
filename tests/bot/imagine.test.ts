/**
 * The first slice end to end: the real discord.js client on the fake Discord, a real Dialect server with the tiny
 * model. /imagine is acknowledged within 3 s, shows progress by editing the reply, and ends with a pixel-exact
 * upscaled attachment, the prompt, the seed, a link and the buttons.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { buttonIds } from '../discord-fake/index.ts';
import { type Deployment, isImageResult, PUBLIC_URL, startDeployment } from './harness.ts';

let d: Deployment;
before(async () => {
  d = await startDeployment();
});
after(async () => {
  await d?.dispose();
});

test('the bot identified over the gateway and registered its commands', () => {
  assert.equal(d.fake.gatewayStats.identifies, 1);
  const names = (d.fake.commands.get('global') ?? []).map((c) => `${c.type}:${c.name}`).sort();
  assert.deepEqual(names, ['1:describe', '1:edit', '1:history', '1:imagine', '3:Describe image', '3:Edit image']);
});

test('/imagine: deferred at once, progress edits, then the upscaled image with prompt, seed, link and buttons', async () => {
  const alice = d.person('alice');
  const ix = alice.slash(d.channel, 'imagine', { prompt: 'a large red circle in the center', seed: 42, scale: 2 });
  const ack = await ix.acknowledged();
  assert.equal(ack.type, 5, 'a deferred channel message');
  assert.ok(ack.afterMs < 3000);
  assert.equal(Number(ack.data?.flags ?? 0) & 64, 0, 'public');

  const result = await ix.waitForOriginal(isImageResult);
  assert.match(result.content, /a large red circle in the center/);
  assert.match(result.content, /seed `42`/);
  assert.match(result.content, /scale 2/);
  assert.ok(result.content.includes(`${PUBLIC_URL}/#/c/`), result.content);
  assert.deepEqual(
    buttonIds(result).map((id) => id.split(':')[0]),
    ['reroll', 'edit', 'describe', 'tokens'],
  );
  const progress = (result.history ?? []).filter((m) => m.content.startsWith('⏳'));
  assert.ok(progress.length >= 1, 'at least one progress edit');
  assert.match(progress.at(-1)?.content ?? '', /Generating “a large red circle in the center”/);

  // Pixel-exact: 64×64 shown at 8× (512 px), each model pixel an 8×8 block of one colour.
  const attachment = result.attachments[0]!;
  const png = d.fake.attachmentBytes(attachment);
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.width, 512);
  assert.equal(info.height, 512);
  for (const [x, y] of [[0, 0], [100, 200], [511, 511], [256, 17]] as const) {
    const bx = x - (x % 8);
    const by = y - (y % 8);
    for (let dy = 0; dy < 8; dy += 1) {
      for (let dx = 0; dx < 8; dx += 1) {
        const a = ((by + dy) * 512 + bx + dx) * info.channels;
        const b = (by * 512 + bx) * info.channels;
        assert.deepEqual([...data.subarray(a, a + 3)], [...data.subarray(b, b + 3)]);
      }
    }
  }
  assert.deepEqual(d.fake.unhandled, []);
});
