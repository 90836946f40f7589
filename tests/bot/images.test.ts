/**
 * Images people bring: /describe and /edit with an attachment, the message context menus "Describe image" and
 * "Edit image" (modal), and a reply to one of the bot's images that edits it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import type { FakeAttachment } from '../discord-fake/index.ts';
import { gql } from '../server/helpers.ts';
import { button, type Deployment, isImageResult, startDeployment } from './harness.ts';

let d: Deployment;
before(async () => {
  d = await startDeployment();
});
after(async () => {
  await d?.dispose();
});

async function shapePng(): Promise<Buffer> {
  const circle = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64" fill="white"/><circle cx="32" cy="32" r="8" fill="rgb(225,25,35)"/></svg>');
  return sharp(circle).png().toBuffer();
}

async function uploadShape(channelId: string, name = 'shape.png'): Promise<FakeAttachment> {
  return d.fake.upload(channelId, name, await shapePng(), 'image/png');
}

async function turnOf(personId: string, turnId: string): Promise<any> {
  const response = await gql(
    d.server.url,
    'query($id: ID!) { turn(id: $id) { task prompt text parent { id } conversation { id } inputImage { id origin } image { id parent { id } } } }',
    { id: turnId },
    { authorization: `Bearer ${d.apiKey}`, 'x-dialect-discord-user': personId },
  );
  return response.body.data.turn;
}

test('/describe with an attachment and the default question, then with a question', async () => {
  const carol = d.person('carol');
  const image = await uploadShape(d.channel.id);
  const first = carol.slash(d.channel, 'describe', { image });
  assert.equal((await first.acknowledged()).type, 5);
  const answer = await first.waitForOriginal((m) => m.content.startsWith('💬'));
  assert.match(answer.content, /\*\*Describe the image\.\*\*/);
  const turn = await turnOf(carol.id, button(answer, 'reroll').split(':')[1] as string);
  assert.equal(turn.task, 'UNDERSTAND');
  assert.equal(turn.inputImage.origin, 'UPLOAD');
  assert.ok(turn.text.length > 0);

  const second = carol.slash(d.channel, 'describe', { image, question: 'What color is the circle?' });
  const answered = await second.waitForOriginal((m) => m.content.startsWith('💬'));
  assert.match(answered.content, /What color is the circle\?/);
});

test('/edit with an attachment and an instruction', async () => {
  const carol = d.person('carol-edit');
  const ix = carol.slash(d.channel, 'edit', { image: await uploadShape(d.channel.id), instruction: 'make the circle blue' });
  const edited = await ix.waitForOriginal(isImageResult);
  assert.match(edited.content, /make the circle blue/);
  const turn = await turnOf(carol.id, button(edited, 'reroll').split(':')[1] as string);
  assert.equal(turn.task, 'EDIT');
  assert.equal(turn.inputImage.origin, 'UPLOAD');
});

test('context menu "Describe image" on a person\'s message with an image', async () => {
  const dave = d.person('dave');
  const posted = dave.say(d.channel, 'look at this', { attachments: [await uploadShape(d.channel.id)] });
  const ix = dave.messageCommand(d.channel, 'Describe image', posted);
  assert.equal((await ix.acknowledged()).type, 5);
  const answer = await ix.waitForOriginal((m) => m.content.startsWith('💬'));
  assert.equal(answer.type, 23, 'a context menu response');
});

test('context menu "Edit image" asks for the instruction in a modal, on any message with an image', async () => {
  const dave = d.person('dave-edit');
  const posted = dave.say(d.channel, 'edit me', { attachments: [await uploadShape(d.channel.id)] });
  const ix = dave.messageCommand(d.channel, 'Edit image', posted);
  assert.equal((await ix.acknowledged()).type, 9);
  const submit = dave.submitModal(ix, { instruction: 'move the circle to the top left' });
  const edited = await submit.waitForOriginal(isImageResult);
  assert.match(edited.content, /move the circle to the top left/);
});

test('context menus on the bot\'s own image use its stored tokens and continue its conversation', async () => {
  const erin = d.person('erin');
  const made = await erin.slash(d.channel, 'imagine', { prompt: 'a green triangle', seed: 3 }).waitForOriginal(isImageResult);
  const ix = erin.messageCommand(d.channel, 'Describe image', made);
  const answer = await ix.waitForOriginal((m) => m.content.startsWith('💬'));
  const made_turn = await turnOf(erin.id, button(made, 'reroll').split(':')[1] as string);
  const turn = await turnOf(erin.id, button(answer, 'reroll').split(':')[1] as string);
  assert.equal(turn.inputImage.origin, 'GENERATED');
  assert.equal(turn.conversation.id, made_turn.conversation.id);
  assert.equal(turn.parent.id, button(made, 'reroll').split(':')[1]);
});

test('a context menu on a message without an image is refused at once, ephemerally', async () => {
  const dave = d.person('dave-text');
  const posted = dave.say(d.channel, 'just words');
  const ix = dave.messageCommand(d.channel, 'Describe image', posted);
  const ack = await ix.acknowledged();
  assert.equal(ack.type, 4);
  assert.equal(Number(ack.data?.flags) & 64, 64);
  assert.match(String(ack.data?.content), /no image/);
});

test('a reply to one of the bot\'s images edits it, in its conversation', async () => {
  const frank = d.person('frank');
  const made = await frank.slash(d.channel, 'imagine', { prompt: 'a large yellow square', seed: 11 }).waitForOriginal(isImageResult);
  const reply = frank.say(d.channel, 'make the square purple', { replyTo: made });
  const edited = await d.fake.waitFor(
    () => d.fake.channelMessages(d.channel.id).find((m) => m.message_reference?.message_id === reply.id && isImageResult(m)),
    20_000,
    'the edited image',
  );
  assert.equal(edited.author.id, d.fake.bot.id);
  assert.match(edited.content, /make the square purple/);
  assert.ok((edited.history ?? []).some((m) => m.content.startsWith('⏳ Editing')), 'progress shown by editing the message');
  const madeTurnId = button(made, 'reroll').split(':')[1] as string;
  const turn = await turnOf(frank.id, button(edited, 'reroll').split(':')[1] as string);
  assert.equal(turn.task, 'EDIT');
  assert.equal(turn.parent.id, madeTurnId);
  assert.equal(turn.image.parent.id, button(made, 'tokens').split(':')[1], 'edited from the stored image');
});

test('a reply to a message that is not the bot\'s is ignored', async () => {
  const gina = d.person('gina');
  const posted = gina.say(d.channel, 'hello', { attachments: [await uploadShape(d.channel.id)] });
  const before = d.fake.channelMessages(d.channel.id).length;
  gina.say(d.channel, 'make it blue', { replyTo: posted });
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(d.fake.channelMessages(d.channel.id).length, before + 1);
});
