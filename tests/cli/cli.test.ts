import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const root = fileURLToPath(new URL('../../', import.meta.url));
const bin = join(root, 'bin/dialect.js');
const bundle = join(root, 'tests/fixtures/tiny-bundle');
const inputPng = join(root, 'tests/fixtures/golden/image_a.png');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function dialect(args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd, env: { ...process.env, DIALECT_MODEL: bundle } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('dialect CLI on the tiny random bundle', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dialect-cli-'));
    await copyFile(inputPng, join(dir, 'in.png'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('generate writes a PNG of the bundle output size, the same for the same seed', async () => {
    const first = await dialect(['generate', 'a red circle', '--out', 'a.png', '--seed', '7', '--scale', '2'], dir);
    assert.equal(first.code, 0, first.stderr);
    const second = await dialect(['generate', 'a red circle', '--out', 'b.png', '--seed', '7'], dir);
    assert.equal(second.code, 0, second.stderr);
    const meta = await sharp(join(dir, 'a.png')).metadata();
    assert.equal(meta.format, 'png');
    assert.equal(meta.width, 64);
    assert.equal(meta.height, 64);
    assert.deepEqual(await readFile(join(dir, 'a.png')), await readFile(join(dir, 'b.png')));
  });

  it('understand prints an answer; edit writes an image', async () => {
    const answer = await dialect(['understand', '--image', 'in.png', 'What is this?'], dir);
    assert.equal(answer.code, 0, answer.stderr);
    assert.ok(answer.stdout.trim().length > 0);
    const edited = await dialect(['edit', '--image', 'in.png', 'make it blue', '--out', 'edited.png', '--seed', '1'], dir);
    assert.equal(edited.code, 0, edited.stderr);
    assert.equal((await sharp(join(dir, 'edited.png')).metadata()).width, 64);
  });

  it('reconstruct encodes an image to tokens and renders them back, flags and batch lines alike', async () => {
    const single = await dialect(['reconstruct', '--image', 'in.png', '--out', 'r.png', '--seed', '5', '--scale', '3'], dir);
    assert.equal(single.code, 0, single.stderr);
    assert.match(single.stderr, /wrote r\.png \(seed 5\)/);
    const meta = await sharp(join(dir, 'r.png')).metadata();
    assert.equal(meta.format, 'png');
    assert.equal(meta.width, 64);
    const lines = [
      { id: 'r3', task: 'reconstruct', image: 'in.png', out: 'r3.png', scale: 3, seed: 5 },
      { id: 'r1', task: 'reconstruct', image: 'in.png', out: 'r1.png', scale: 1, seed: 5 },
      { id: 'rd', task: 'reconstruct', image: 'in.png', out: 'rd.png' },
      { id: 'u1', task: 'understand', image: 'in.png', prompt: 'Describe the image.', scale: 1 },
      { id: 'no-out', task: 'reconstruct', image: 'in.png' },
      { id: 'bad-scale', task: 'reconstruct', image: 'in.png', out: 'x.png', scale: 7 },
    ];
    await writeFile(join(dir, 'reconstruct.jsonl'), lines.map((line) => JSON.stringify(line)).join('\n'));
    const run = await dialect(['batch', 'reconstruct.jsonl'], dir);
    assert.equal(run.code, 1, run.stderr);
    const answers = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(answers.map((a) => a.id), lines.map((l) => l.id));
    const [r3, r1, rd, u1, noOut, badScale] = answers as Record<string, unknown>[];
    // Same image, scale and seed as the single command: the same tokens and the same pixels.
    assert.equal(r3?.image, 'r3.png');
    assert.equal(r3?.seed, 5);
    assert.equal((r3?.tokens as number[]).length, 9);
    assert.deepEqual(await readFile(join(dir, 'r3.png')), await readFile(join(dir, 'r.png')));
    assert.equal((r1?.tokens as number[]).length, 81);
    assert.equal((rd?.tokens as number[]).length, 16, 'the tiny bundle reads images at its default scale, 2');
    assert.equal(typeof rd?.ms, 'number');
    // understand takes a scale too: the image is encoded at it.
    assert.equal((u1?.tokens as number[]).length, 81);
    assert.equal((noOut?.error as { code: string; message: string }).code, 'BAD_REQUEST');
    assert.match((noOut?.error as { message: string }).message, /"out"/);
    assert.equal((badScale?.error as { code: string }).code, 'INVALID_REQUEST');
    const noImage = await dialect(['reconstruct', '--out', 'x.png'], dir);
    assert.equal(noImage.code, 2);
    assert.match(noImage.stderr, /needs --image/);
    const withPrompt = await dialect(['reconstruct', '--image', 'in.png', '--out', 'x.png', 'a prompt'], dir);
    assert.equal(withPrompt.code, 2);
  });

  it('batch answers every line in order, with typed errors for bad lines and bad images', async () => {
    await writeFile(join(dir, 'not-an-image.png'), 'hello');
    const lines = [
      { id: 'g', task: 'generate', prompt: 'a red circle', out: 'g.png', seed: 3 },
      { id: 'u', task: 'understand', image: 'in.png', prompt: 'Describe the image.' },
      'this is not json',
      { id: 'bad-task', task: 'paint', prompt: 'x' },
      { id: 'bad-image', task: 'understand', image: 'not-an-image.png', prompt: 'What?' },
      { id: 'e', task: 'edit', image: 'in.png', prompt: 'make it red', out: 'e.png', seed: 4 },
    ];
    await writeFile(
      join(dir, 'requests.jsonl'),
      lines.map((line) => (typeof line === 'string' ? line : JSON.stringify(line))).join('\n'),
    );
    const run = await dialect(['batch', 'requests.jsonl'], dir);
    assert.equal(run.code, 1, 'a batch with failed lines exits 1');
    const answers = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(
      answers.map((a) => a.id),
      ['g', 'u', null, 'bad-task', 'bad-image', 'e'],
    );
    assert.equal(answers[0]?.image, 'g.png');
    assert.ok(Array.isArray(answers[0]?.tokens) && (answers[0]?.tokens as number[]).length === 16);
    assert.equal(typeof answers[1]?.text, 'string');
    assert.equal((answers[2]?.error as { code: string }).code, 'BAD_REQUEST');
    assert.equal((answers[3]?.error as { code: string }).code, 'BAD_REQUEST');
    assert.equal((answers[4]?.error as { code: string }).code, 'INVALID_IMAGE');
    assert.equal(answers[5]?.image, 'e.png');
    assert.match(run.stderr, /3 answered, 3 failed/);
  });

  it('--temperature and --guidance reach the model, as flags and as batch fields', async () => {
    const lines = [
      { id: 'plain', task: 'generate', prompt: 'a red circle', out: 'p.png', seed: 9, temperature: 0 },
      { id: 'guided', task: 'generate', prompt: 'a red circle', out: 'q.png', seed: 9, temperature: 0, guidance: 4 },
      { id: 'sampled', task: 'generate', prompt: 'a red circle', out: 's.png', seed: 9 },
      { id: 'bad', task: 'generate', prompt: 'a red circle', out: 'b.png', guidance: -1 },
    ];
    await writeFile(join(dir, 'sampling.jsonl'), lines.map((line) => JSON.stringify(line)).join('\n'));
    const run = await dialect(['batch', 'sampling.jsonl'], dir);
    const [plain, guided, sampled, bad] = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.notDeepEqual(guided?.tokens, plain?.tokens, 'guidance changes the greedy image');
    assert.notDeepEqual(sampled?.tokens, plain?.tokens, "the bundle's default temperature (1) is not greedy");
    assert.match((bad?.error as { message: string }).message, /"guidance" must be a number between 0 and 50/);

    const single = await dialect(['generate', 'a red circle', '--out', 'single.png', '--seed', '9', '--temperature', '0', '--guidance', '4'], dir);
    assert.equal(single.code, 0, single.stderr);
    assert.deepEqual(await readFile(join(dir, 'single.png')), await readFile(join(dir, 'q.png')));
  });

  it('--detok-guidance reaches the de-tokenizer of every written image, as a flag and as a batch field', async () => {
    const lines = [
      { id: 'plain', task: 'reconstruct', image: 'in.png', out: 'rp.png', seed: 5, detokGuidance: 1 },
      { id: 'guided', task: 'reconstruct', image: 'in.png', out: 'rg.png', seed: 5, detokGuidance: 6 },
      { id: 'drawn', task: 'generate', prompt: 'a red circle', out: 'rd.png', seed: 5, temperature: 0, detokGuidance: 1 },
      { id: 'generated', task: 'generate', prompt: 'a red circle', out: 'rq.png', seed: 5, temperature: 0, detokGuidance: 6 },
      { id: 'bad', task: 'reconstruct', image: 'in.png', out: 'rb.png', detokGuidance: 'high' },
      { id: 'asked', task: 'understand', image: 'in.png', prompt: 'What?', detokGuidance: 2 },
    ];
    await writeFile(join(dir, 'detok.jsonl'), lines.map((line) => JSON.stringify(line)).join('\n'));
    const run = await dialect(['batch', 'detok.jsonl'], dir);
    const [plain, guided, drawn, generated, bad, asked] = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(guided?.tokens, plain?.tokens, 'the image tokens are the encoder\'s either way');
    assert.notDeepEqual(await readFile(join(dir, 'rg.png')), await readFile(join(dir, 'rp.png')), 'guidance changes the pixels');
    assert.deepEqual(generated?.tokens, drawn?.tokens, 'the same greedy image tokens');
    assert.notDeepEqual(await readFile(join(dir, 'rq.png')), await readFile(join(dir, 'rd.png')), 'a generation is rendered with it too');
    assert.match((bad?.error as { message: string }).message, /"detokGuidance" must be a number between 0 and 50/);
    assert.equal(typeof asked?.text, 'string', 'a question ignores a field it has no use for, as with "guidance"');

    const single = await dialect(['reconstruct', '--image', 'in.png', '--out', 'rs.png', '--seed', '5', '--detok-guidance', '6'], dir);
    assert.equal(single.code, 0, single.stderr);
    assert.deepEqual(await readFile(join(dir, 'rs.png')), await readFile(join(dir, 'rg.png')));
    const misplaced = await dialect(['understand', '--image', 'in.png', 'What?', '--detok-guidance', '2'], dir);
    assert.equal(misplaced.code, 2);
    assert.match(misplaced.stderr, /understand takes no --detok-guidance/);
  });

  it('--views reads the image at more scales, as a flag and as a batch field; none reads it alone', async () => {
    const question = { task: 'understand', image: 'in.png', prompt: 'Describe the image.', scale: 2 };
    const lines = [
      { id: 'alone', ...question },
      { id: 'viewed', ...question, views: [1] },
      { id: 'none', ...question, views: [] },
      { id: 'unknown', ...question, views: [7] },
      { id: 'bad', ...question, views: '1' },
    ];
    await writeFile(join(dir, 'views.jsonl'), lines.map((line) => JSON.stringify(line)).join('\n'));
    const run = await dialect(['batch', 'views.jsonl'], dir);
    const [alone, viewed, none, unknown, bad] = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.notEqual(viewed?.text, alone?.text, 'the scale-1 view changes the random model\'s answer');
    assert.equal(none?.text, alone?.text);
    assert.match((unknown?.error as { message: string }).message, /viewScales must hold scales of the bundle \(1, 2, 3\), not 7/);
    assert.match((bad?.error as { message: string }).message, /"views" must be an array of scales/);

    const flag = await dialect(['understand', '--image', 'in.png', 'Describe the image.', '--scale', '2', '--views', '1'], dir);
    assert.equal(flag.code, 0, flag.stderr);
    assert.equal(flag.stdout.trim(), String(viewed?.text).trim());
    const off = await dialect(['understand', '--image', 'in.png', 'Describe the image.', '--scale', '2', '--views', 'none'], dir);
    assert.equal(off.stdout.trim(), String(alone?.text).trim());
    const misplaced = await dialect(['generate', 'a red circle', '--out', 'v.png', '--views', '1'], dir);
    assert.equal(misplaced.code, 2);
    assert.match(misplaced.stderr, /generate takes no --views/);
  });

  it("an edit line's imageScale encodes the input at that scale; the edit is written at its own scale", async () => {
    const edit = { task: 'edit', image: 'in.png', prompt: 'make the circle blue', seed: 1, scale: 2 };
    const lines = [
      { id: 'same', ...edit, out: 'same.png' },
      { id: 'finer', ...edit, out: 'finer.png', imageScale: 1 },
      { id: 'unknown', ...edit, out: 'unknown.png', imageScale: 7 },
      { id: 'bad', ...edit, out: 'bad.png', imageScale: 'one' },
    ];
    await writeFile(join(dir, 'image-scale.jsonl'), lines.map((line) => JSON.stringify(line)).join('\n'));
    const run = await dialect(['batch', 'image-scale.jsonl'], dir);
    const [same, finer, unknown, bad] = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.equal((same?.tokens as number[]).length, 16);
    assert.equal((finer?.tokens as number[]).length, 16, 'written at scale 2');
    assert.notDeepEqual(finer?.tokens, same?.tokens, "the scale-1 input changes the random model's edit");
    assert.match((unknown?.error as { message: string }).message, /scale must be one of 1, 2, 3, not 7/);
    assert.match((bad?.error as { message: string }).message, /"imageScale" must be a non-negative integer/);
  });

  it('--self-check and "selfCheck" are taken by generate and edit only, as a flag and as a boolean batch field', async () => {
    const flag = await dialect(['generate', 'a red circle', '--out', 'checked.png', '--seed', '2', '--self-check'], dir);
    assert.equal(flag.code, 0, flag.stderr);
    const misplaced = await dialect(['understand', '--image', 'in.png', 'What is this?', '--self-check'], dir);
    assert.equal(misplaced.code, 2);
    assert.match(misplaced.stderr, /understand takes no --self-check/);
    const lines = [
      { id: 'checked', task: 'edit', image: 'in.png', prompt: 'make it blue', out: 'e.png', seed: 1, selfCheck: true },
      { id: 'bad', task: 'generate', prompt: 'a red circle', out: 'g.png', selfCheck: 'yes' },
    ];
    await writeFile(join(dir, 'self-check.jsonl'), lines.map((line) => JSON.stringify(line)).join('\n'));
    const run = await dialect(['batch', 'self-check.jsonl'], dir);
    const [checked, bad] = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.equal(checked?.error, undefined, 'the tiny bundle checks with the shapes judge, as the CLI loads it');
    assert.match((bad?.error as { message: string }).message, /"selfCheck" must be true or false/);
  });

  it('usage mistakes exit 2 with a message', async () => {
    const guidedQuestion = await dialect(['understand', '--image', 'in.png', 'what?', '--guidance', '2'], dir);
    assert.equal(guidedQuestion.code, 2);
    assert.match(guidedQuestion.stderr, /understand takes no --guidance/);
    const hotReconstruct = await dialect(['reconstruct', '--image', 'in.png', '--out', 'x.png', '--temperature', '1'], dir);
    assert.equal(hotReconstruct.code, 2);
    const batchSeed = await dialect(['batch', 'requests.jsonl', '--seed', '1'], dir);
    assert.equal(batchSeed.code, 2, 'a batch sets seeds per line, so the flag is refused rather than ignored');
    const noOut = await dialect(['generate', 'a red circle'], dir);
    assert.equal(noOut.code, 2);
    assert.match(noOut.stderr, /needs --out/);
    const badScale = await dialect(['generate', 'x', '--out', 'x.png', '--scale', '9'], dir);
    assert.equal(badScale.code, 2);
    assert.match(badScale.stderr, /--scale must be between 1 and 3/);
    const missingModel = await dialect(['generate', 'x', '--out', 'x.png', '--model', join(dir, 'nope')], dir);
    assert.equal(missingModel.code, 2);
    assert.match(missingModel.stderr, /no model bundle/);
    const unknown = await dialect(['paint'], dir);
    assert.equal(unknown.code, 2);
  });
});
