/**
 * End to end over real HTTP and WebSocket, on PGlite and on the PostgreSQL server (a fresh database per run):
 * mutations, image URLs, subscriptions, cancellation, keys and acting for Discord users, origins, restarts with
 * history and crash recovery, graceful shutdown, health, readiness and metrics.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { runKeys } from '../../src/cli/commands/keys.ts';
import type { Database } from '../../src/db/client.ts';
import { addTurn, createConversation } from '../../src/db/conversations.ts';
import { startTurn } from '../../src/db/turn-writes.ts';
import { setImagePng } from '../../src/db/images.ts';
import { claimNextJob, getJob } from '../../src/db/jobs.ts';
import { getOrCreateOwner } from '../../src/db/server-queries.ts';
import { revokeApiKey } from '../../src/db/users.ts';
import type { DialectServer } from '../../src/server/app.ts';
import { forEachDriver } from '../db/harness.ts';
import { gql, pngBase64, startTestServer, TURN_FIELDS, until } from './helpers.ts';

const GENERATE = `mutation($input: GenerateInput!) { generate(input: $input) { ${TURN_FIELDS} } }`;

function wsUrl(server: DialectServer): string {
  return `${server.url.replace('http', 'ws')}/graphql`;
}

function wsClient(server: DialectServer, params: Record<string, string> = {}): Client {
  return createClient({ url: wsUrl(server), webSocketImpl: WebSocket, connectionParams: params, retryAttempts: 0, lazy: true });
}

/** Collects a subscription's results until it completes or fails. */
function collect(client: Client, query: string, variables: Record<string, unknown>): Promise<{ results: any[]; error?: unknown }> {
  return new Promise((resolve) => {
    const results: any[] = [];
    client.subscribe({ query, variables }, {
      next: (value) => results.push(value),
      error: (error) => resolve({ results, error }),
      complete: () => resolve({ results }),
    });
  });
}

/** Creates a key with the CLI command over the test database (its close is left to the test). */
async function cliKey(database: Database, args: string[]): Promise<string> {
  const write = process.stdout.write.bind(process.stdout);
  const errWrite = process.stderr.write.bind(process.stderr);
  let out = '';
  process.stdout.write = ((chunk: string) => ((out += chunk), true)) as typeof process.stdout.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    const code = await runKeys(args, async () => ({ ...database, close: async () => {} }));
    assert.equal(code, 0);
  } finally {
    process.stdout.write = write;
    process.stderr.write = errWrite;
  }
  return out.trim();
}

forEachDriver((context) => {
  let server: DialectServer;
  before(async () => {
    server = await startTestServer(context.database, { DIALECT_ALLOWED_ORIGINS: 'https://allowed.example' });
  });
  after(async () => {
    await server?.stop();
  });

  test('health, readiness, metrics and the web page', async () => {
    assert.deepEqual(await (await fetch(`${server.url}/healthz`)).json(), { status: 'ok' });
    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 200);
    const page = await fetch(`${server.url}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /Dialect/);
    await gql(server.url, GENERATE, { input: { prompt: 'metrics warm-up' } });
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    for (const name of [
      'dialect_queue_depth',
      'dialect_jobs{status="running"}',
      'dialect_jobs_finished_total{task="generate",status="succeeded"}',
      'dialect_job_duration_seconds_bucket',
      'dialect_tokens_per_second_bucket',
      'dialect_graphql_request_duration_seconds_bucket',
    ]) {
      assert.ok(metrics.includes(name), `${name} in /metrics`);
    }
  });

  test('mutations over HTTP, and image URLs that are signed, expire and re-render from tokens', async () => {
    const g = await gql(server.url, GENERATE, { input: { prompt: 'a green square', seed: 99 } });
    assert.equal(g.status, 200);
    const turn = g.body.data.generate.turn;
    assert.equal(turn.status, 'SUCCEEDED');
    const u = await gql(server.url, `mutation($input: UnderstandInput!) { understand(input: $input) { ${TURN_FIELDS} } }`, {
      input: { prompt: 'which shape?', image: { base64: await pngBase64() }, conversationId: turn.conversation.id },
    });
    assert.equal(u.body.data.understand.turn.status, 'SUCCEEDED');
    const e = await gql(server.url, `mutation($input: EditInput!) { edit(input: $input) { ${TURN_FIELDS} } }`, {
      input: { prompt: 'make it red', image: { id: turn.image.id } },
    });
    assert.equal(e.body.data.edit.turn.status, 'SUCCEEDED');

    const first = await fetch(server.url + turn.image.url);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('content-type'), 'image/png');
    const original = Buffer.from(await first.arrayBuffer());
    assert.ok(original.subarray(1, 4).equals(Buffer.from('PNG')));

    // An empty cache is filled by rendering the tokens with the stored seed: the same pixels come back.
    const me = await gql(server.url, '{ me { id } }');
    await setImagePng(context.database, me.body.data.me.id, turn.image.id, null);
    const rendered = Buffer.from(await (await fetch(server.url + turn.image.url)).arrayBuffer());
    assert.ok(rendered.equals(original), 're-rendered PNG equals the original');

    const url = new URL(server.url + turn.image.url);
    const tampered = new URL(url);
    tampered.searchParams.set('e', String(Number(url.searchParams.get('e')) + 3600));
    assert.equal((await fetch(tampered)).status, 403);
    const otherUser = new URL(url);
    otherUser.searchParams.set('u', '01a2246e-7fc7-7394-b9b6-a7245cfd3e28');
    assert.equal((await fetch(otherUser)).status, 403);
    const expired = new URL(url);
    expired.searchParams.set('e', '1000');
    assert.equal((await fetch(expired)).status, 403);
    assert.equal((await fetch(`${server.url}/images/${turn.image.id}.png`)).status, 403);
  });

  test('a subscription streams a job’s progress and result over graphql-ws; cancellation ends it', async () => {
    const client = wsClient(server);
    try {
      const r = await gql(server.url, GENERATE, { input: { prompt: 'a slow circle', scale: 1, wait: false } });
      const jobId = r.body.data.generate.job.id;
      const { results, error } = await collect(client, `subscription($id: ID!) { jobProgress(id: $id) { id status stage done total turn { image { id } } } }`, { id: jobId });
      assert.equal(error, undefined);
      assert.ok(results.length >= 1);
      const last = results[results.length - 1].data.jobProgress;
      assert.equal(last.status, 'SUCCEEDED');
      assert.equal(last.stage, 'DONE');
      assert.ok(last.turn.image.id);

      const slow = await gql(server.url, GENERATE, { input: { prompt: 'to cancel', scale: 1, wait: false } });
      const cancelId = slow.body.data.generate.job.id;
      const stream = collect(client, `subscription($id: ID!) { jobProgress(id: $id) { status } }`, { id: cancelId });
      const c = await gql(server.url, `mutation($id: ID!) { cancelJob(id: $id) { job { status } errors { code } } }`, { id: cancelId });
      assert.deepEqual(c.body.data.cancelJob.errors, []);
      const ended = await stream;
      const final = ended.results[ended.results.length - 1].data.jobProgress.status;
      assert.ok(['CANCELLED', 'SUCCEEDED'].includes(final), final);
      assert.equal(final, c.body.data.cancelJob.job.status);
    } finally {
      await client.dispose();
    }
  });

  test('WebSocket operations get the same validation and origin checks as HTTP', async () => {
    const client = wsClient(server);
    try {
      const deep = await collect(client, `{ conversations { edges { node { turns { parent { parent { parent { parent { parent { parent { parent { parent { parent { parent { id } } } } } } } } } } } } } } }`, {});
      assert.match(JSON.stringify(deep), /levels deep/);
      const intro = await collect(client, `{ __schema { types { name } } }`, {});
      assert.match(JSON.stringify(intro), /introspection/);
      const unknown = await collect(client, `subscription { jobProgress(id: "01a2246e-815d-7164-a092-69aef9ad52a3") { id } }`, {});
      assert.match(JSON.stringify(unknown), /NOT_FOUND|no such job/);
    } finally {
      await client.dispose();
    }
    const refused = await new Promise<number>((resolve) => {
      const socket = new WebSocket(wsUrl(server), 'graphql-transport-ws', { headers: { origin: 'https://evil.example' } });
      socket.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      socket.on('open', () => resolve(101));
      socket.on('error', () => resolve(-1));
    });
    assert.equal(refused, 403);
    const evil = await gql(server.url, '{ me { id } }', {}, { origin: 'https://evil.example' });
    assert.equal(evil.status, 403);
    const allowed = await gql(server.url, '{ me { id } }', {}, { origin: 'https://allowed.example' });
    assert.equal(allowed.status, 200);
    assert.equal(allowed.headers.get('access-control-allow-origin'), 'https://allowed.example');
    const same = await gql(server.url, '{ me { id } }', {}, { origin: server.url });
    assert.equal(same.status, 200);
  });

  test('malformed requests: a body too large, bad JSON, an unknown operation', async () => {
    const big = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ me { id } }', variables: { x: 'x'.repeat(15 * 1024 * 1024) } }),
    });
    assert.equal(big.status, 413);
    const bad = await fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query": ' });
    assert.equal(bad.status, 400);
    const parse = await gql(server.url, '{ me { id ');
    assert.equal(parse.status, 400);
    assert.equal(parse.body.errors?.[0]?.extensions?.code, 'GRAPHQL_PARSE_FAILED');
    const unknownField = await gql(server.url, '{ me { password } }');
    assert.equal(unknownField.body.errors?.[0]?.extensions?.code, 'GRAPHQL_VALIDATION_FAILED');
  });

  test('a user sending more operations than the request rate gets RATE_LIMITED (429), others do not', async () => {
    const strict = await startTestServer(context.database, { DIALECT_REQUESTS_PER_MINUTE: '1', DIALECT_REQUEST_BURST: '5' });
    try {
      const flood = { 'x-dialect-discord-user': '8880001' };
      const statuses: number[] = [];
      for (let i = 0; i < 6; i += 1) statuses.push((await gql(strict.url, '{ __typename }', {}, flood)).status);
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429]);
      const limited = await gql(strict.url, '{ me { id } }', {}, flood);
      assert.equal(limited.body.errors?.[0]?.extensions?.code, 'RATE_LIMITED');
      const ws = wsClient(strict, { discordUser: '8880001' });
      const viaWs = await collect(ws, '{ __typename }', {});
      assert.match(JSON.stringify(viaWs), /RATE_LIMITED|too many requests/);
      await ws.dispose();
      assert.equal((await gql(strict.url, '{ me { id } }', {}, { 'x-dialect-discord-user': '8880002' })).status, 200);
    } finally {
      await strict.stop();
    }
  });

  test('bound beyond loopback, a key is required even when none exists', async () => {
    const open = await startTestServer(context.database, { HOST: '0.0.0.0' });
    try {
      const r = await gql(open.url.replace('0.0.0.0', '127.0.0.1'), '{ me { id } }');
      assert.equal(r.status, 401);
      assert.equal(r.body.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
    } finally {
      await open.stop();
    }
  });

  test('keys: once one exists every request needs one; revoked keys stop working; the bot acts for Discord users', async () => {
    const before = await gql(server.url, '{ me { id name } }');
    const ownerId = before.body.data.me.id;
    const ownerConversations = await gql(server.url, '{ conversations { edges { node { id } } } }');
    const plainKey = await cliKey(context.database, ['create', '--name', 'laptop']);
    const botKey = await cliKey(context.database, ['create', '--name', 'bot', '--scope', 'act_as_discord']);
    assert.match(plainKey, /^dlk_/);
    // A new server (a restart) on the same database sees the keys and the history.
    await server.stop();
    server = await startTestServer(context.database, { DIALECT_ALLOWED_ORIGINS: 'https://allowed.example' });

    const anonymous = await gql(server.url, '{ me { id } }');
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.body.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
    assert.equal((await gql(server.url, '{ me { id } }', {}, { authorization: 'Bearer dlk_nope' })).status, 401);
    assert.equal((await gql(server.url, '{ me { id } }', {}, { authorization: 'Basic abc' })).status, 401);
    const withKey = await gql(server.url, '{ me { id } conversations { edges { node { id } } } }', {}, { authorization: `Bearer ${plainKey}` });
    assert.equal(withKey.body.data.me.id, ownerId);
    assert.deepEqual(withKey.body.data.conversations, ownerConversations.body.data.conversations, 'history survives the restart');

    const forbidden = await gql(server.url, '{ me { id } }', {}, { authorization: `Bearer ${plainKey}`, 'x-dialect-discord-user': '1234' });
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.body.errors?.[0]?.extensions?.code, 'FORBIDDEN');
    const bot = (discordUser: string) => ({
      authorization: `Bearer ${botKey}`,
      'x-dialect-discord-user': discordUser,
      'x-dialect-discord-name': encodeURIComponent('Zoë'),
    });
    const asZoe = await gql(server.url, '{ me { id name discordId } conversations { edges { node { id } } } }', {}, bot('5550001'));
    assert.equal(asZoe.body.data.me.discordId, '5550001');
    assert.equal(asZoe.body.data.me.name, 'Zoë');
    assert.notEqual(asZoe.body.data.me.id, ownerId);
    assert.deepEqual(asZoe.body.data.conversations.edges, [], 'a Discord user sees only their own history');
    const zoeTurn = await gql(server.url, GENERATE, { input: { prompt: 'zoe’s star' } }, bot('5550001'));
    const zoeConversation = zoeTurn.body.data.generate.turn.conversation.id;
    const asYann = await gql(server.url, 'query($id: ID!) { conversation(id: $id) { id } }', { id: zoeConversation }, bot('5550002'));
    assert.equal(asYann.body.data.conversation, null);
    const asOwner = await gql(server.url, 'query($id: ID!) { conversation(id: $id) { id } }', { id: zoeConversation }, { authorization: `Bearer ${botKey}` });
    assert.equal(asOwner.body.data.conversation, null, 'the bot key itself does not see its Discord users’ data');

    // WebSocket: the key in connectionParams; none is refused.
    const anonymousWs = wsClient(server);
    const refused = await collect(anonymousWs, '{ me { id } }', {});
    assert.ok(refused.error !== undefined);
    await anonymousWs.dispose();
    const keyed = wsClient(server, { authorization: `Bearer ${botKey}`, discordUser: '5550001' });
    const viaWs = await collect(keyed, '{ me { discordId } }', {});
    assert.equal(viaWs.results[0].data.me.discordId, '5550001');
    // Nor can a Discord user follow another user's job.
    const ownerJob = await gql(server.url, GENERATE, { input: { prompt: 'owner job' } }, { authorization: `Bearer ${plainKey}` });
    const spy = await collect(keyed, 'subscription($id: ID!) { jobProgress(id: $id) { id status } }', { id: ownerJob.body.data.generate.job.id });
    assert.match(JSON.stringify(spy), /no such job/);
    assert.ok(!JSON.stringify(spy).includes('SUCCEEDED'));
    await keyed.dispose();

    const owner = await getOrCreateOwner(context.database);
    const listed = JSON.parse(await cliKey(context.database, ['list', '--json'])) as { id: string; name: string }[];
    const laptop = listed.find((k) => k.name === 'laptop')!;
    await revokeApiKey(context.database, owner.id, laptop.id);
    assert.equal((await gql(server.url, '{ me { id } }', {}, { authorization: `Bearer ${plainKey}` })).status, 401);
    for (const k of listed) await revokeApiKey(context.database, owner.id, k.id);
    await until(async () => (await gql(server.url, '{ me { id } }')).status === 200, 5000, 200);
  });

  test('a restart recovers the jobs a crash left running, and runs them', async () => {
    const owner = await getOrCreateOwner(context.database);
    const conversation = await createConversation(context.database, owner.id, { title: 'crash' });
    const { jobId } = await addTurn(context.database, owner.id, {
      conversationId: conversation.id,
      task: 'generate',
      prompt: 'left behind',
      settings: { seed: 5 },
    });
    await server.stop();
    // A worker that died holding the job (its lease has run out by the time the server starts).
    let claimed = await claimNextJob(context.database, 'dead-worker', { leaseMs: 1 });
    while (claimed !== null && claimed.id !== jobId) claimed = await claimNextJob(context.database, 'dead-worker', { leaseMs: 1 });
    assert.equal((await getJob(context.database, owner.id, jobId!)).status, 'running');
    server = await startTestServer(context.database);
    await until(async () => (await getJob(context.database, owner.id, jobId!)).status === 'succeeded');
  });

  test('a job written claimed by the fast path, left running by a crash, is found at the next start and run', async () => {
    const owner = await getOrCreateOwner(context.database);
    await server.stop();
    // What the fast path writes before the model ends (startTurn with a claim), by a process that then died; its lease
    // has run out by the next start (on PGlite every running job is taken at start anyway; on PostgreSQL, where other
    // servers may hold leases, those that ran out).
    const { job, turn } = await startTurn(context.database, owner.id, {
      conversation: { title: 'fast path crash' },
      task: 'generate',
      prompt: 'left behind early',
      settings: { seed: 9 },
      claim: { workerId: 'dead-fast-path', leaseMs: 1 },
    });
    assert.equal((await getJob(context.database, owner.id, job.id)).status, 'running');
    server = await startTestServer(context.database);
    await until(async () => (await getJob(context.database, owner.id, job.id)).status === 'succeeded');
    const t = await gql(server.url, `query($id: ID!) { turn(id: $id) { status image { id } } }`, { id: turn.id });
    assert.equal(t.body.data.turn.status, 'SUCCEEDED');
    assert.ok(t.body.data.turn.image.id);
  });

  test('graceful shutdown lets a running job finish and answers its request', async () => {
    const ownerId = (await getOrCreateOwner(context.database)).id;
    let answered = false;
    const pending = gql(server.url, GENERATE, { input: { prompt: 'finish me', scale: 1 } }).finally(() => {
      answered = true;
    });
    // Stop as soon as the job runs (on a fast machine it may even have ended: then the stop finds nothing to wait for).
    await until(async () => answered || server.services.runner.activeJobs(ownerId) > 0, 5000, 1);
    const stopped = server.stop();
    const answer = await pending;
    await stopped;
    assert.equal(answer.status, 200);
    assert.equal(answer.body.data.generate.turn.status, 'SUCCEEDED');
    await assert.rejects(fetch(`${server.url}/healthz`));
    server = await startTestServer(context.database);
  });
});
