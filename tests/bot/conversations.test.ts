/**
 * Threads are conversations: a mention in a channel starts a thread from the message with the first turn; a
 * mention in a thread the bot started continues that conversation with its earlier turns as context. /history lists
 * a person's own work only, ephemerally, with pages.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FakeChannel, FakeMessage, Person } from '../discord-fake/index.ts';
import { gql } from '../server/helpers.ts';
import { button, type Deployment, isImageResult, startDeployment } from './harness.ts';

let d: Deployment;
before(async () => {
  d = await startDeployment();
});
after(async () => {
  await d?.dispose();
});

async function conversationOf(person: Person, turnId: string): Promise<{ id: string; turns: { id: string; task: string; prompt: string; parent: { id: string } | null }[] }> {
  const response = await gql(
    d.server.url,
    'query($id: ID!) { turn(id: $id) { conversation { id turns { id task prompt parent { id } } } } }',
    { id: turnId },
    { authorization: `Bearer ${d.apiKey}`, 'x-dialect-discord-user': person.id },
  );
  return response.body.data.turn.conversation;
}

function botResultIn(channelId: string, after: number, predicate: (m: FakeMessage) => boolean = () => true): Promise<FakeMessage> {
  return d.fake.waitFor(
    () =>
      d.fake
        .channelMessages(channelId)
        .slice(after)
        .find((m) => m.author.id === d.fake.bot.id && !m.content.startsWith('⏳') && m.components.length > 0 && predicate(m)),
    20_000,
    `a bot result in ${channelId}`,
  );
}

describe('threads', () => {
  let hana: Person;
  let thread: FakeChannel;
  let first: FakeMessage;

  test('a mention in a channel starts a thread from the message, with the first turn in it', async () => {
    hana = d.person('hana');
    const asked = hana.say(d.channel, `<@${d.fake.bot.id}> a large red circle in the center`);
    thread = await d.fake.waitFor(() => [...d.fake.channels.values()].find((c) => c.id === asked.id && c.type === 11), 10_000, 'a thread');
    assert.equal(thread.owner_id, d.fake.bot.id);
    assert.equal(thread.parent_id, d.channel.id);
    assert.equal(thread.name, 'a large red circle in the center');
    first = await botResultIn(thread.id, 0, isImageResult);
    assert.match(first.content, /a large red circle in the center/);
  });

  test('a mention in the thread continues the conversation: a question about its latest image', async () => {
    const count = d.fake.channelMessages(thread.id).length;
    hana.say(thread, `<@${d.fake.bot.id}> what color is the circle?`);
    const answer = await botResultIn(thread.id, count, (m) => m.content.startsWith('💬'));
    const conversation = await conversationOf(hana, button(answer, 'reroll').split(':')[1] as string);
    const firstTurnId = button(first, 'reroll').split(':')[1] as string;
    assert.deepEqual(conversation.turns.map((t) => t.task), ['GENERATE', 'UNDERSTAND']);
    assert.equal(conversation.turns[1]?.parent?.id, firstTurnId, 'the earlier turn is its context');
  });

  test('then an instruction edits the latest image, and plain words draw, all in the same conversation', async () => {
    let count = d.fake.channelMessages(thread.id).length;
    hana.say(thread, `<@${d.fake.bot.id}> make the circle green`);
    const edited = await botResultIn(thread.id, count, isImageResult);
    assert.match(edited.content, /✏️/);
    count = d.fake.channelMessages(thread.id).length;
    hana.say(thread, `<@${d.fake.bot.id}> two blue squares`);
    const drawn = await botResultIn(thread.id, count, isImageResult);
    const conversation = await conversationOf(hana, button(drawn, 'reroll').split(':')[1] as string);
    assert.deepEqual(conversation.turns.map((t) => t.task), ['GENERATE', 'UNDERSTAND', 'EDIT', 'GENERATE']);
    for (let i = 1; i < conversation.turns.length; i += 1) {
      assert.equal(conversation.turns[i]?.parent?.id, conversation.turns[i - 1]?.id, 'each turn follows the one before');
    }
  });

  test('after a restart of the bot, the thread and the buttons still work (ids live in Discord, not in the bot)', async () => {
    await d.restartBot();
    const count = d.fake.channelMessages(thread.id).length;
    hana.say(thread, `<@${d.fake.bot.id}> how many shapes are there?`);
    const answer = await botResultIn(thread.id, count, (m) => m.content.startsWith('💬'));
    const conversation = await conversationOf(hana, button(answer, 'reroll').split(':')[1] as string);
    assert.equal(conversation.turns.length, 5);
    const reroll = hana.click(first, (id) => id.startsWith('reroll:'));
    await reroll.waitForOriginal(isImageResult);
  });

  test("someone else's mention in the thread is told kindly that it is not their conversation", async () => {
    const ivan = d.person('ivan');
    const count = d.fake.channelMessages(thread.id).length;
    const said = ivan.say(thread, `<@${d.fake.bot.id}> what is in the image?`);
    const reply = await d.fake.waitFor(
      () => d.fake.channelMessages(thread.id).slice(count).find((m) => m.message_reference?.message_id === said.id),
      10_000,
      'a reply',
    );
    assert.match(reply.content, /⚠️ .*someone else's conversation/);
  });

  test('a message in the thread without a mention is ignored, as are threads the bot did not start', async () => {
    const count = d.fake.channelMessages(thread.id).length;
    hana.say(thread, 'nice one');
    const other = d.fake.createThread(d.channel.id, 'people talking', hana.user);
    hana.say(other, `<@${d.fake.bot.id}> a red circle`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(d.fake.channelMessages(thread.id).length, count + 1);
    assert.equal(d.fake.channelMessages(other.id).length, 1);
  });
});

describe('/history', () => {
  test("is ephemeral, lists only the person's own work, newest first, with links and pages", async () => {
    const jo = d.person('jo');
    const kim = d.person('kim');
    const prompts = ['one red circle', 'two red circles', 'three red circles', 'a blue square', 'a green triangle', 'a yellow circle', 'an orange square'];
    for (const prompt of prompts) await jo.slash(d.channel, 'imagine', { prompt, seed: 1 }).waitForOriginal(isImageResult);
    await kim.slash(d.channel, 'imagine', { prompt: 'kim only: a purple triangle', seed: 1 }).waitForOriginal(isImageResult);

    const ix = jo.slash(d.channel, 'history');
    const ack = await ix.acknowledged();
    assert.equal(ack.type, 5);
    assert.equal(Number(ack.data?.flags) & 64, 64, 'ephemeral');
    const page1 = await ix.waitForOriginal((m) => m.content.includes('Your recent work'));
    assert.equal(page1.flags & 64, 64);
    assert.doesNotMatch(page1.content, /kim only/);
    for (const prompt of prompts.slice(2).reverse()) assert.ok(page1.content.includes(prompt), `${prompt} on page 1`);
    assert.ok(page1.content.indexOf('an orange square') < page1.content.indexOf('a yellow circle'), 'newest first');
    assert.match(page1.content, /https:\/\/dialect\.example\/#\/c\//);

    const next = jo.click(page1, (id) => id.startsWith('history:') && id.endsWith(':1'));
    assert.equal((await next.acknowledged()).type, 6, 'a deferred update of the same message');
    const page2 = await d.fake.waitFor(() => {
      const m = d.fake.messages.get(page1.id);
      return m !== undefined && m.content.includes('page 2') ? m : undefined;
    });
    assert.ok(page2.content.includes('two red circles') && page2.content.includes('one red circle'), page2.content);
    const nextButton = page2.components.flatMap((r) => r.components as { custom_id: string; disabled?: boolean }[]).find((b) => b.custom_id.endsWith(':2'));
    assert.equal(nextButton?.disabled, true, 'no page 3');

    const back = jo.click(page2, (id) => id.startsWith('history:') && id.endsWith(':0'));
    await back.acknowledged();
    await d.fake.waitFor(() => d.fake.messages.get(page1.id)?.content.includes('page 1'));

    const kimHistory = await kim.slash(d.channel, 'history').waitForOriginal((m) => m.content.includes('Your recent work'));
    assert.match(kimHistory.content, /kim only: a purple triangle/);
    assert.doesNotMatch(kimHistory.content, /red circle/);
  });

  test('an empty history says how to start', async () => {
    const lee = d.person('lee');
    const reply = await lee.slash(d.channel, 'history').waitForOriginal();
    assert.match(reply.content, /Nothing yet/);
  });
});
