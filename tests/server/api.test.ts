/**
 * The API's behaviour, three times: in process (Apollo's executeOperation) on PGlite, and over real HTTP on PGlite
 * and on the PostgreSQL server: every mutation, continuing a conversation, history queries, every bad input and
 * limit as its typed error, and user isolation.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DRIVERS, openTestDatabase, type TestDatabase } from '../db/harness.ts';
import type { DialectServer } from '../../src/server/app.ts';
import { exec as inProcess, freshUser, gql, jpegBase64, pngBase64, startTestServer, tinyModel, TURN_FIELDS, until } from './helpers.ts';

let handle: TestDatabase;
let server: DialectServer;
let transport: 'in-process' | 'http' = 'in-process';

/** Runs an operation as the given credentials, in process or over HTTP (headers) as the suite says. */
async function exec(
  target: DialectServer,
  query: string,
  variables: Record<string, unknown> = {},
  credentials: { authorization?: string; discordUser?: string; discordName?: string } = {},
): Promise<{ data?: any; errors?: readonly { message: string; extensions?: Record<string, unknown> }[] }> {
  if (transport === 'in-process') return inProcess(target, query, variables, credentials);
  const headers: Record<string, string> = {};
  if (credentials.authorization !== undefined) headers.authorization = credentials.authorization;
  if (credentials.discordUser !== undefined) headers['x-dialect-discord-user'] = credentials.discordUser;
  if (credentials.discordName !== undefined) headers['x-dialect-discord-name'] = credentials.discordName;
  return (await gql(target.url, query, variables, headers)).body as never;
}

const SUITES = [
  ['pglite', 'in-process'],
  ['pglite', 'http'],
  ['pg', 'http'],
] as const;

for (const [driver, mode] of SUITES) {
  if (!DRIVERS.includes(driver)) continue;
  describe(`${driver}, ${mode}`, () => {
    before(async () => {
      transport = mode;
      handle = await openTestDatabase(driver);
      server = await startTestServer(handle.database, {
        DIALECT_MAX_PROMPT_CHARS: '200',
        DIALECT_MAX_UPLOAD_BYTES: '20000',
        DIALECT_MAX_UPLOAD_PIXELS: '10000',
        DIALECT_RATE_PER_MINUTE: '600',
        DIALECT_RATE_BURST: '30',
        DIALECT_MAX_JOBS_PER_USER: '3',
        DIALECT_MAX_QUERY_DEPTH: '8',
        DIALECT_MAX_ALIASES: '5',
      });
    });
    after(async () => {
      await server.stop();
      await handle.dispose();
    });
    suite();
  });
}

const GENERATE = `mutation($input: GenerateInput!) { generate(input: $input) { ${TURN_FIELDS} } }`;
const UNDERSTAND = `mutation($input: UnderstandInput!) { understand(input: $input) { ${TURN_FIELDS} } }`;
const EDIT = `mutation($input: EditInput!) { edit(input: $input) { ${TURN_FIELDS} } }`;

/** The tests, against the suite's server. */
function suite(): void {
  describe('mutations', () => {
    test('generate, then understand and edit the result in the same conversation', async () => {
      const user = freshUser();
      const g = await exec(server, GENERATE, { input: { prompt: 'a red circle', seed: 7, scale: 2 } }, user);
      assert.equal(g.errors, undefined);
      const turn = g.data.generate.turn;
      assert.deepEqual(g.data.generate.errors, []);
      assert.equal(turn.status, 'SUCCEEDED');
      assert.equal(turn.task, 'GENERATE');
      assert.equal(turn.settings.seed, 7);
      assert.equal(turn.image.scale, 2);
      assert.equal(turn.image.tokens.length, 16);
      assert.equal(turn.image.grid, 4);
      assert.equal(turn.image.origin, 'GENERATED');
      assert.match(turn.image.url, /^\/images\/[0-9a-f-]{36}\.png\?u=/);
      assert.equal(turn.conversation.title, 'a red circle');
      assert.equal(g.data.generate.job.status, 'SUCCEEDED');
      assert.equal(g.data.generate.job.stage, 'DONE');

      const conversationId = turn.conversation.id;
      const u = await exec(server, UNDERSTAND, { input: { prompt: 'what is it?', image: { id: turn.image.id }, conversationId, seed: 1 } }, user);
      assert.deepEqual(u.data.understand.errors, []);
      const answer = u.data.understand.turn;
      assert.equal(answer.status, 'SUCCEEDED');
      assert.equal(answer.parent.id, turn.id, 'a turn with conversationId follows the latest turn');
      assert.equal(typeof answer.text, 'string');

      // The API gave the runtime the earlier turns of the branch, as image tokens: the same call made directly agrees.
      const model = await tinyModel();
      const direct = await model.understand({
        prompt: 'what is it?',
        image: { tokens: turn.image.tokens, scale: 2 },
        seed: 1,
        history: [
          { role: 'user', task: 'generate', text: 'a red circle' },
          { role: 'assistant', image: { tokens: turn.image.tokens, scale: 2 } },
        ],
      });
      assert.equal(answer.text, direct.text);

      const e = await exec(server, EDIT, { input: { prompt: 'make it blue', image: { id: turn.image.id }, conversationId, seed: 3 } }, user);
      assert.deepEqual(e.data.edit.errors, []);
      const edited = e.data.edit.turn;
      assert.equal(edited.status, 'SUCCEEDED');
      assert.equal(edited.image.origin, 'EDITED');
      assert.equal(edited.image.parent.id, turn.image.id);
      assert.equal(edited.parent.id, answer.id);

      const history = await exec(
        server,
        `query($id: ID!) { conversation(id: $id) { title turns { id task status children { id } } } }`,
        { id: conversationId },
        user,
      );
      assert.deepEqual(
        history.data.conversation.turns.map((t: { task: string }) => t.task),
        ['GENERATE', 'UNDERSTAND', 'EDIT'],
      );
      assert.equal(history.data.conversation.turns[0].children[0].id, answer.id);
    });

    test('uploads: PNG and JPEG bytes are encoded, stored as UPLOAD images and reusable by id', async () => {
      const user = freshUser();
      const u = await exec(server, UNDERSTAND, { input: { prompt: 'describe', image: { base64: await pngBase64() }, scale: 3 } }, user);
      assert.deepEqual(u.data.understand.errors, []);
      const input = u.data.understand.turn.inputImage;
      assert.equal(input.origin, 'UPLOAD');
      assert.equal(input.scale, 3);
      assert.equal(input.tokens.length, 9);
      const e = await exec(server, EDIT, { input: { prompt: 'blue', image: { base64: await jpegBase64() } } }, user);
      assert.deepEqual(e.data.edit.errors, []);
      assert.equal(e.data.edit.turn.status, 'SUCCEEDED');
      const again = await exec(server, UNDERSTAND, { input: { prompt: 'again', image: { id: input.id } } }, user);
      assert.equal(again.data.understand.turn.inputImage.id, input.id);
    });

    test('wait: false answers at once with the queued job, which then runs to the end', async () => {
      const user = freshUser();
      const r = await exec(server, GENERATE, { input: { prompt: 'a square', wait: false } }, user);
      assert.deepEqual(r.data.generate.errors, []);
      assert.ok(['QUEUED', 'RUNNING'].includes(r.data.generate.job.status));
      assert.ok(['QUEUED', 'RUNNING'].includes(r.data.generate.turn.status));
      assert.equal(r.data.generate.turn.image, null);
      const jobId = r.data.generate.job.id;
      await until(async () => (await exec(server, `query($id: ID!) { job(id: $id) { status } }`, { id: jobId }, user)).data.job.status === 'SUCCEEDED');
      const done = await exec(server, `query($id: ID!) { job(id: $id) { status stage task turn { image { id } } } }`, { id: jobId }, user);
      assert.equal(done.data.job.task, 'GENERATE');
      assert.equal(done.data.job.stage, 'DONE');
      assert.ok(done.data.job.turn.image.id);
    });

    test('cancelJob stops a job; cancelling it again returns it unchanged', async () => {
      const user = freshUser();
      const r = await exec(server, GENERATE, { input: { prompt: 'a big triangle', scale: 1, wait: false } }, user);
      const jobId = r.data.generate.job.id;
      const c = await exec(server, `mutation($id: ID!) { cancelJob(id: $id) { job { id status } errors { code } } }`, { id: jobId }, user);
      assert.deepEqual(c.data.cancelJob.errors, []);
      const status = c.data.cancelJob.job.status;
      // The tiny model may finish before the cancel lands; either way the answer is the job's true state.
      assert.ok(['CANCELLED', 'SUCCEEDED'].includes(status), status);
      await until(async () => {
        const j = await exec(server, `query($id: ID!) { job(id: $id) { status } }`, { id: jobId }, user);
        return j.data.job.status !== 'RUNNING' && j.data.job.status !== 'QUEUED';
      });
      const again = await exec(server, `mutation($id: ID!) { cancelJob(id: $id) { job { status } errors { code } } }`, { id: jobId }, user);
      assert.deepEqual(again.data.cancelJob.errors, []);
      assert.equal(again.data.cancelJob.job.status, status);
      const turn = await exec(server, `query($id: ID!) { job(id: $id) { turn { status error { code } } } }`, { id: jobId }, user);
      if (status === 'CANCELLED') assert.equal(turn.data.job.turn.error.code, 'CANCELLED');
    });

    test('many waiting requests on few slots: some start at once, the rest queue; all end with their own answer', async () => {
      const small = await startTestServer(handle.database, { DIALECT_CONCURRENCY: '2' });
      try {
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) => exec(small, GENERATE, { input: { prompt: `crowd ${i}`, seed: i } }, freshUser())),
        );
        for (const [i, r] of results.entries()) {
          assert.deepEqual(r.data.generate.errors, []);
          assert.equal(r.data.generate.turn.status, 'SUCCEEDED', `request ${i}`);
          assert.equal(r.data.generate.turn.prompt, `crowd ${i}`);
          assert.equal(r.data.generate.job.status, 'SUCCEEDED');
          assert.equal(r.data.generate.turn.settings.seed, i);
        }
      } finally {
        await small.stop();
      }
    });

    test('reroll makes a sibling with a new seed', async () => {
      const user = freshUser();
      const g = await exec(server, GENERATE, { input: { prompt: 'a dot', seed: 11 } }, user);
      const first = g.data.generate.turn;
      const r = await exec(server, `mutation($input: RerollInput!) { reroll(input: $input) { ${TURN_FIELDS} } }`, { input: { turnId: first.id, seed: 12 } }, user);
      assert.deepEqual(r.data.reroll.errors, []);
      assert.equal(r.data.reroll.turn.settings.seed, 12);
      assert.equal(r.data.reroll.turn.parent, null, 'a reroll of a first turn is another first turn');
      assert.equal(r.data.reroll.turn.conversation.id, first.conversation.id);
    });
  });

  describe('history', () => {
    test('conversations page newest first; rename, search and delete', async () => {
      const user = freshUser();
      for (const prompt of ['first green star', 'second blue moon', 'third green hill']) {
        await exec(server, GENERATE, { input: { prompt } }, user);
      }
      const page1 = await exec(server, `{ conversations(first: 2) { edges { cursor node { id title } } pageInfo { hasNextPage endCursor } } }`, {}, user);
      const c = page1.data.conversations;
      assert.deepEqual(c.edges.map((e: any) => e.node.title), ['third green hill', 'second blue moon']);
      assert.equal(c.pageInfo.hasNextPage, true);
      const page2 = await exec(server, `query($after: String) { conversations(first: 2, after: $after) { edges { node { title } } pageInfo { hasNextPage } } }`, { after: c.pageInfo.endCursor }, user);
      assert.deepEqual(page2.data.conversations.edges.map((e: any) => e.node.title), ['first green star']);
      assert.equal(page2.data.conversations.pageInfo.hasNextPage, false);

      const found = await exec(server, `{ search(query: "green") { edges { node { prompt } } } }`, {}, user);
      assert.deepEqual(found.data.search.edges.map((e: any) => e.node.prompt).sort(), ['first green star', 'third green hill']);

      const id = c.edges[0].node.id;
      const renamed = await exec(server, `mutation($input: RenameConversationInput!) { renameConversation(input: $input) { conversation { title } errors { code } } }`, { input: { id, title: 'hills' } }, user);
      assert.equal(renamed.data.renameConversation.conversation.title, 'hills');
      const deleted = await exec(server, `mutation($id: ID!) { deleteConversation(id: $id) { deletedId errors { code } } }`, { id }, user);
      assert.equal(deleted.data.deleteConversation.deletedId, id);
      assert.equal((await exec(server, `query($id: ID!) { conversation(id: $id) { id } }`, { id }, user)).data.conversation, null);
      const again = await exec(server, `mutation($id: ID!) { deleteConversation(id: $id) { deletedId errors { code field } } }`, { id }, user);
      assert.deepEqual(JSON.parse(JSON.stringify(again.data.deleteConversation.errors)), [{ code: 'NOT_FOUND', field: ['id'] }]);
      const bad = await exec(server, `{ conversations(after: "garbage") { edges { cursor } } }`, {}, user);
      assert.equal(bad.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
    });

    test('me, model and limits', async () => {
      const r = await exec(server, `{ me { id name discordId } model { name defaultScale scales { scale grid tokens } imageSize } limits { maxPromptChars maxUploadBytes } }`, {}, { discordUser: '424242', discordName: 'Ann%20B' });
      assert.equal(r.data.me.discordId, '424242');
      assert.equal(r.data.me.name, 'Ann B');
      assert.equal(r.data.model.name, 'tiny-random');
      assert.equal(r.data.limits.maxPromptChars, 200);
      const d = await exec(server, `{ model { defaults { text { temperature maxNewTokens } image { temperature cfgScale promptGuidance } } } }`);
      assert.deepEqual(JSON.parse(JSON.stringify(d.data.model.defaults)), {
        text: { temperature: 0, maxNewTokens: 16 },
        image: { temperature: 1, cfgScale: 3, promptGuidance: 1 },
      });
    });

    test('promptGuidance reaches the model and is kept with the turn', async () => {
      const query = `mutation($input: GenerateInput!) { generate(input: $input) {
        turn { image { tokens } settings { seed promptGuidance cfgScale } } errors { code } } }`;
      const run = async (promptGuidance?: number) => {
        const sampling = { temperature: 0, ...(promptGuidance === undefined ? {} : { promptGuidance }) };
        const r = await exec(server, query, { input: { prompt: 'a red circle', seed: 4, scale: 2, sampling } });
        assert.deepEqual(r.data.generate.errors, []);
        return r.data.generate.turn;
      };
      const plain = await run();
      const guided = await run(4);
      assert.equal(plain.settings.promptGuidance, null, 'unset: the model default');
      assert.equal(guided.settings.promptGuidance, 4);
      assert.notDeepEqual(guided.image.tokens, plain.image.tokens);
    });
  });

  describe('bad input and limits are typed errors', () => {
    const expectError = async (query: string, input: object, code: string, field?: string[]) => {
      const r = await exec(server, query, { input }, freshUser());
      assert.equal(r.errors, undefined, JSON.stringify(r.errors));
      const payload = Object.values(r.data as object)[0] as { turn: unknown; errors: { code: string; field: string[] | null }[] };
      assert.equal(payload.turn, null);
      assert.equal(payload.errors[0]?.code, code, JSON.stringify(payload.errors));
      if (field !== undefined) assert.deepEqual(payload.errors[0]?.field, field);
    };

    test('prompts', async () => {
      await expectError(GENERATE, { prompt: 'x'.repeat(201) }, 'PROMPT_TOO_LONG', ['input', 'prompt']);
      await expectError(GENERATE, { prompt: '   ' }, 'INVALID_INPUT', ['input', 'prompt']);
    });

    test('settings', async () => {
      await expectError(GENERATE, { prompt: 'p', seed: -1 }, 'INVALID_INPUT', ['input', 'seed']);
      await expectError(GENERATE, { prompt: 'p', scale: 7 }, 'INVALID_INPUT', ['input', 'scale']);
      await expectError(GENERATE, { prompt: 'p', sampling: { temperature: -1 } }, 'INVALID_INPUT', ['input', 'sampling', 'temperature']);
      await expectError(GENERATE, { prompt: 'p', sampling: { promptGuidance: -1 } }, 'INVALID_INPUT', ['input', 'sampling', 'promptGuidance']);
      const named = await exec(server, GENERATE, { input: { prompt: 'p', sampling: { promptGuidance: 99 } } }, freshUser());
      assert.match(named.data.generate.errors[0].message, /^promptGuidance must be between 0 and 50$/, 'the message names the API field');
      await expectError(UNDERSTAND, { prompt: 'p', image: { base64: await pngBase64() }, sampling: { maxNewTokens: 0 } }, 'INVALID_INPUT');
      const overflow = await exec(server, GENERATE, { input: { prompt: 'p', seed: 2 ** 31 } });
      assert.equal(overflow.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT', 'GraphQL Int holds seeds up to 2^31 - 1');
    });

    test('images', async () => {
      await expectError(UNDERSTAND, { prompt: 'p', image: {} }, 'INVALID_INPUT', ['input', 'image']);
      await expectError(UNDERSTAND, { prompt: 'p', image: { id: '01a2246e-815d-7164-a092-69aef9ad52a3', base64: 'AAAA' } }, 'INVALID_INPUT');
      await expectError(UNDERSTAND, { prompt: 'p', image: { base64: '!!!not base64' } }, 'INVALID_IMAGE', ['input', 'image', 'base64']);
      await expectError(UNDERSTAND, { prompt: 'p', image: { base64: Buffer.from('GIF89a-not-allowed').toString('base64') } }, 'INVALID_IMAGE');
      const truncated = Buffer.from(await pngBase64(), 'base64').subarray(0, 60).toString('base64');
      await expectError(EDIT, { prompt: 'p', image: { base64: truncated } }, 'INVALID_IMAGE');
      await expectError(UNDERSTAND, { prompt: 'p', image: { base64: Buffer.alloc(30_000, 1).toString('base64') } }, 'IMAGE_TOO_LARGE');
      await expectError(UNDERSTAND, { prompt: 'p', image: { base64: await pngBase64(200, 200) } }, 'IMAGE_TOO_LARGE', ['input', 'image', 'base64']);
      await expectError(UNDERSTAND, { prompt: 'p', image: { id: '01a2246e-815d-7164-a092-69aef9ad52a3' } }, 'NOT_FOUND', ['input', 'image', 'id']);
      await expectError(UNDERSTAND, { prompt: 'p', image: { id: 'not-an-id' } }, 'NOT_FOUND');
    });

    test('unknown conversations and turns', async () => {
      await expectError(GENERATE, { prompt: 'p', conversationId: '01a2246e-815d-7164-a092-69aef9ad52a3' }, 'NOT_FOUND', ['input', 'conversationId']);
      await expectError(GENERATE, { prompt: 'p', parentTurnId: '01a2246e-815d-7164-a092-69aef9ad52a3' }, 'NOT_FOUND', ['input', 'parentTurnId']);
      const r = await exec(server, `mutation { cancelJob(id: "01a2246e-815d-7164-a092-69aef9ad52a3") { job { id } errors { code } } }`);
      assert.equal(r.data.cancelJob.errors[0].code, 'NOT_FOUND');
    });

    test('a user may have only so many jobs at once, even sending them all together', async () => {
      const user = freshUser();
      const results = await Promise.all(
        Array.from({ length: 5 }, (_, i) => exec(server, GENERATE, { input: { prompt: `job ${i}`, scale: 1, wait: false } }, user)),
      );
      const codes = results.map((r) => r.data.generate.errors[0]?.code ?? 'OK').sort();
      assert.deepEqual(codes, ['OK', 'OK', 'OK', 'RATE_LIMITED', 'RATE_LIMITED']);
      const other = await exec(server, GENERATE, { input: { prompt: 'another user', scale: 1, wait: false } }, freshUser());
      assert.deepEqual(other.data.generate.errors, [], 'the cap is per user');
    });

    test('operations: depth, aliases, cost and introspection', async () => {
      const deep = await exec(server, `{ conversations { edges { node { turns { parent { parent { parent { parent { parent { id } } } } } } } } } }`);
      assert.equal(deep.errors?.[0]?.extensions?.code, 'QUERY_TOO_COMPLEX');
      const aliases = await exec(server, `{ a: me { id } b: me { id } c: me { id } d: me { id } e: me { id } f: me { id } }`);
      assert.equal(aliases.errors?.[0]?.extensions?.code, 'QUERY_TOO_COMPLEX');
      const costly = await exec(server, `{ conversations(first: 100) { edges { node { turns { children { children { id prompt task status } } } } } } }`);
      assert.equal(costly.errors?.[0]?.extensions?.code, 'QUERY_TOO_COMPLEX');
      // A page size given as a variable counts as its value, not as the largest page.
      const paged = `query($n: Int) { conversations(first: $n) { edges { node { id title turns { id prompt text task } } } } }`;
      assert.deepEqual((await exec(server, paged, { n: 10 })).errors, undefined);
      assert.equal((await exec(server, paged, { n: 100 })).errors?.[0]?.extensions?.code, 'QUERY_TOO_COMPLEX');
      const intro = await exec(server, `{ __schema { types { name } } }`);
      assert.equal(intro.errors?.[0]?.extensions?.code, 'QUERY_TOO_COMPLEX');
      const oneType = await exec(server, `query($name: String!) { __type(name: $name) { name } }`, { name: 'Turn' });
      assert.equal(oneType.data.__type.name, 'Turn', '__type stays: one type at a time of a published schema');
      const typename = await exec(server, `{ __typename }`);
      assert.equal(typename.data.__typename, 'Query');
    });
  });

  describe('isolation', () => {
    test('nobody sees another user’s conversations, turns, images or jobs', async () => {
      const ann = freshUser();
      const bob = freshUser();
      const g = await exec(server, GENERATE, { input: { prompt: 'ann secret lighthouse' } }, ann);
      const turn = g.data.generate.turn;
      const jobId = g.data.generate.job.id;
      const ids = { c: turn.conversation.id, t: turn.id, i: turn.image.id, j: jobId };
      const r = await exec(
        server,
        `query($c: ID!, $t: ID!, $i: ID!, $j: ID!) { conversation(id: $c) { id } turn(id: $t) { id } image(id: $i) { id } job(id: $j) { id }
          conversations { edges { node { id } } } images { edges { node { id } } } search(query: "lighthouse") { edges { node { id } } } }`,
        ids,
        bob,
      );
      assert.equal(r.errors, undefined);
      assert.deepEqual(
        { ...r.data, conversations: r.data.conversations.edges, images: r.data.images.edges, search: r.data.search.edges },
        { conversation: null, turn: null, image: null, job: null, conversations: [], images: [], search: [] },
      );
      for (const [query, input] of [
        [UNDERSTAND, { prompt: 'p', image: { id: ids.i } }],
        [GENERATE, { prompt: 'p', conversationId: ids.c }],
        [GENERATE, { prompt: 'p', parentTurnId: ids.t }],
      ] as const) {
        const m = await exec(server, query, { input }, bob);
        assert.equal((Object.values(m.data)[0] as any).errors[0].code, 'NOT_FOUND');
      }
      const cancel = await exec(server, `mutation($id: ID!) { cancelJob(id: $id) { errors { code } } }`, { id: jobId }, bob);
      assert.equal(cancel.data.cancelJob.errors[0].code, 'NOT_FOUND');
      const rename = await exec(server, `mutation($id: ID!) { renameConversation(input: { id: $id, title: "x" }) { errors { code } } }`, { id: ids.c }, bob);
      assert.equal(rename.data.renameConversation.errors[0].code, 'NOT_FOUND');
      const reroll = await exec(server, `mutation($id: ID!) { reroll(input: { turnId: $id }) { errors { code } } }`, { id: ids.t }, bob);
      assert.equal(reroll.data.reroll.errors[0].code, 'NOT_FOUND');
      const still = await exec(server, `query($c: ID!) { conversation(id: $c) { title } }`, { c: ids.c }, ann);
      assert.equal(still.data.conversation.title, 'ann secret lighthouse');
    });

    test('an image deleted with its conversation is NOT_FOUND by id, though its tokens were just used, and nothing is written', async () => {
      const ann = freshUser();
      const g = await exec(server, GENERATE, { input: { prompt: 'soon gone' } }, ann);
      const image = g.data.generate.turn.image.id;
      const u = await exec(server, UNDERSTAND, { input: { prompt: 'what is it?', image: { id: image } } }, ann);
      assert.equal(u.data.understand.turn.status, 'SUCCEEDED');
      for (const c of [g.data.generate.turn.conversation.id, u.data.understand.turn.conversation.id]) {
        const d = await exec(server, `mutation($id: ID!) { deleteConversation(id: $id) { errors { code } } }`, { id: c }, ann);
        assert.deepEqual(d.data.deleteConversation.errors, []);
      }
      for (const [query, name] of [[UNDERSTAND, 'understand'], [EDIT, 'edit']] as const) {
        const m = await exec(server, query, { input: { prompt: 'again', image: { id: image } } }, ann);
        assert.deepEqual(m.data[name].errors.map((e: { code: string; field: string[] | null }) => [e.code, e.field]), [['NOT_FOUND', ['input', 'image', 'id']]]);
      }
      const left = await exec(server, `{ conversations { edges { node { id } } } }`, {}, ann);
      assert.deepEqual(left.data.conversations.edges, [], 'no conversation was made by the refused requests');
    });
  });
}
