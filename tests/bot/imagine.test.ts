/**
 * The first slice end to end: the real discord.js client on the fake Discord, a real Dialect server with the tiny
 * model. /imagine is acknowledged within 3 s, shows progress by editing the reply, and ends with a pixel-exact
 * upscaled attachment, the prompt, the seed, a link and the buttons.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { buttonIds, type FakeMessage, type Person } from '../discord-fake/index.ts';
import { gql } from '../server/helpers.ts';
import { button, type Deployment, isImageResult, PUBLIC_URL, startDeployment } from './harness.ts';

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
  for (const command of d.fake.commands.get('global') ?? []) assert.deepEqual(command.contexts, [0], `${String(command.name)}: servers only`);
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

test('/imagine guidance: sent to the API, kept with the turn, shown, and kept by a reroll', async () => {
  const bea = d.person('bea-guidance');
  const result = await bea.slash(d.channel, 'imagine', { prompt: 'two green squares', seed: 5, guidance: 2.5 }).waitForOriginal(isImageResult);
  assert.match(result.content, /seed `5` · guidance 2\.5/);
  const conversation = /#\/c\/([\w-]+)/.exec(result.content)?.[1];
  assert.ok(conversation !== undefined, result.content);
  const query = `query($id: ID!) { conversation(id: $id) { turns { settings { seed promptGuidance } } } }`;
  const before = await gqlAs(bea, query, { id: conversation });
  assert.deepEqual(JSON.parse(JSON.stringify(before.conversation.turns)), [{ settings: { seed: 5, promptGuidance: 2.5 } }]);

  const rerolled = await bea.click(result, (id) => id.startsWith('reroll:')).waitForOriginal(isImageResult);
  assert.match(rerolled.content, /· guidance 2\.5/);
  const plain = await bea.slash(d.channel, 'imagine', { prompt: 'two green squares', seed: 5 }).waitForOriginal(isImageResult);
  assert.doesNotMatch(plain.content, /guidance/, "the model's default is not spelled out");
});

test('/imagine check and /edit check: the self-check is asked of the API, kept with the turn and shown', async () => {
  const cal = d.person('cal-check');
  const result = await cal.slash(d.channel, 'imagine', { prompt: 'a red circle', seed: 3, check: true }).waitForOriginal(isImageResult);
  assert.match(result.content, /seed `3` · self-check/);
  const conversation = /#\/c\/([\w-]+)/.exec(result.content)?.[1];
  const query = `query($id: ID!) { conversation(id: $id) { turns { settings { seed selfCheck } } } }`;
  const turns = await gqlAs(cal, query, { id: conversation });
  assert.deepEqual(JSON.parse(JSON.stringify(turns.conversation.turns)), [{ settings: { seed: 3, selfCheck: true } }]);
  const plain = await cal.slash(d.channel, 'imagine', { prompt: 'a red circle', seed: 3 }).waitForOriginal(isImageResult);
  assert.doesNotMatch(plain.content, /self-check/);
});

describe('buttons under a result', () => {
  let alice: Person;
  let result: FakeMessage;
  before(async () => {
    alice = d.person('alice-buttons');
    const ix = alice.slash(d.channel, 'imagine', { prompt: 'a small blue square at the top left', seed: 7 });
    result = await ix.waitForOriginal(isImageResult);
  });

  test('reroll: a new message with the same prompt and a new seed', async () => {
    const click = alice.click(result, (id) => id.startsWith('reroll:'));
    assert.equal((await click.acknowledged()).type, 5);
    const rerolled = await click.waitForOriginal(isImageResult);
    assert.notEqual(rerolled.id, result.id);
    assert.match(rerolled.content, /a small blue square at the top left/);
    assert.doesNotMatch(rerolled.content, /seed `7`/);
    assert.ok((rerolled.history ?? []).some((m) => m.content.startsWith('⏳ Rerolling')));
  });

  test('show tokens: an ephemeral token grid as text and a picture', async () => {
    const click = alice.click(result, (id) => id.startsWith('tokens:'));
    const ack = await click.acknowledged();
    assert.equal(ack.type, 5);
    assert.equal(Number(ack.data?.flags) & 64, 64, 'ephemeral');
    const reply = await click.waitForOriginal((m) => m.content.includes('Image tokens'));
    const grid = /```\n([\s\S]*)\n```/.exec(reply.content)?.[1];
    assert.ok(grid !== undefined, reply.content);
    const rows = grid.split('\n');
    const imageId = button(result, 'tokens').split(':')[1] as string;
    const image = await gqlAs(alice, `query($id: ID!) { image(id: $id) { grid tokens } }`, { id: imageId });
    assert.equal(rows.length, image.image.grid);
    assert.deepEqual(rows.flatMap((r) => r.trim().split(/\s+/).map(Number)), image.image.tokens);
    assert.ok(reply.attachments.some((a) => a.filename === `tokens-${imageId}.png`));
  });

  test('describe: understands the image from its stored tokens (by id, no upload)', async () => {
    const click = alice.click(result, (id) => id.startsWith('describe:'));
    const answer = await click.waitForOriginal((m) => m.content.startsWith('💬'));
    assert.match(answer.content, /Describe the image\./);
    const turnId = button(answer, 'reroll').split(':')[1] as string;
    const turn = await gqlAs(alice, `query($id: ID!) { turn(id: $id) { task text inputImage { id origin } } }`, { id: turnId });
    assert.equal(turn.turn.task, 'UNDERSTAND');
    assert.equal(turn.turn.inputImage.id, button(result, 'describe').split(':')[1], 'the same stored image, not a re-encoded upload');
    assert.equal(turn.turn.inputImage.origin, 'GENERATED');
    assert.ok(answer.content.includes(turn.turn.text.slice(0, 20).replace(/([\\*_~`|>])/g, '\\$1')));
  });

  test('edit: a modal asks for the instruction, then the edited image follows', async () => {
    const click = alice.click(result, (id) => id.startsWith('edit:'));
    const modal = await click.modal();
    assert.equal((await click.acknowledged()).type, 9);
    assert.match(String(modal.custom_id), /^editmodal:/);
    const submit = alice.submitModal(click, { instruction: 'make the square red' });
    assert.equal((await submit.acknowledged()).type, 5);
    const edited = await submit.waitForOriginal(isImageResult);
    assert.match(edited.content, /✏️ \*\*make the square red\*\*/);
    const turnId = button(edited, 'reroll').split(':')[1] as string;
    const turn = await gqlAs(alice, `query($id: ID!) { turn(id: $id) { task image { parent { id } } } }`, { id: turnId });
    assert.equal(turn.turn.task, 'EDIT');
    assert.equal(turn.turn.image.parent.id, button(result, 'edit').split(':')[1]);
  });

  test("someone else's click: reroll is refused kindly, describe works from the attachment", async () => {
    const bob = d.person('bob-buttons');
    const reroll = bob.click(result, (id) => id.startsWith('reroll:'));
    const refusal = await reroll.waitForMessage((m) => m.content.startsWith('⚠️'));
    assert.equal(refusal.flags & 64, 64, 'ephemeral');
    assert.match(refusal.content, /someone else/);
    assert.equal(reroll.original?.deleted, true, 'the public placeholder is removed');

    const describeClick = bob.click(result, (id) => id.startsWith('describe:'));
    const answer = await describeClick.waitForOriginal((m) => m.content.startsWith('💬'));
    const turnId = button(answer, 'reroll').split(':')[1] as string;
    const turn = await gqlAs(bob, `query($id: ID!) { turn(id: $id) { inputImage { origin } } }`, { id: turnId });
    assert.equal(turn.turn.inputImage.origin, 'UPLOAD');
  });
});

/** Runs a query as a person's own Dialect user (through the bot's key, as the bot does). */
async function gqlAs(person: Person, query: string, variables: Record<string, unknown>): Promise<any> {
  const response = await gql(d.server.url, query, variables, { authorization: `Bearer ${d.apiKey}`, 'x-dialect-discord-user': person.id });
  assert.equal(response.body.errors, undefined, JSON.stringify(response.body.errors));
  return response.body.data;
}
