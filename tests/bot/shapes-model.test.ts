/**
 * Real answers through Discord: the bot on the shipped miniature (models/tar-shapes). What people see is what the
 * model made: the posted image, scaled back down, is the server's PNG pixel for pixel and the shapes checker sees
 * the same scene in both; answers about held-out eval images (uploaded through Discord) are the turn's own text and
 * right about the easy things. The model's quality itself is guarded by tests/eval/model-quality.test.ts. Skipped,
 * saying so, until the bundle exists; DIALECT_TEST_SHAPES_BUNDLE points at another tar-shapes export.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { SHIPPED_BUNDLE_DIR } from '../../src/eval/index.ts';
import { detectImage, gradeAnswer } from '../../src/shapes/index.ts';
import { gql } from '../server/helpers.ts';
import { button, type Deployment, isImageResult, startDeployment } from './harness.ts';

const BUNDLE = process.env.DIALECT_TEST_SHAPES_BUNDLE ?? SHIPPED_BUNDLE_DIR;
const present = existsSync(join(BUNDLE, 'manifest.json'));
const skip = present ? false : `no model bundle at ${BUNDLE} yet`;
const EVAL_DIR = new URL('../../eval/shapes/', import.meta.url);

let d: Deployment | undefined;
before(async () => {
  if (present) d = await startDeployment({ bundleDir: BUNDLE });
});
after(async () => {
  await d?.dispose();
});

async function turnAs(personId: string, turnId: string): Promise<any> {
  const response = await gql(
    (d as Deployment).server.url,
    'query($id: ID!) { turn(id: $id) { prompt text settings { seed } image { url width } } }',
    { id: turnId },
    { authorization: `Bearer ${(d as Deployment).apiKey}`, 'x-dialect-discord-user': personId },
  );
  return response.body.data.turn;
}

test('/imagine posts exactly the image the model made, 8× larger', { skip }, async () => {
  const deployment = d as Deployment;
  const person = deployment.person('shapes-imagine');
  const prompt = 'a large red circle in the center on a white background';
  const result = await person.slash(deployment.channel, 'imagine', { prompt, seed: 1 }).waitForOriginal(isImageResult, 60_000);
  const turn = await turnAs(person.id, button(result, 'reroll').split(':')[1] as string);
  assert.equal(turn.prompt, prompt);
  assert.equal(turn.settings.seed, 1);
  assert.match(result.content, /seed `1`/);
  const served = Buffer.from(await (await fetch(new URL(turn.image.url, deployment.server.url))).arrayBuffer());
  const shown = deployment.fake.attachmentBytes(result.attachments[0]!);
  const factor = 512 / turn.image.width;
  const a = await sharp(served).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const b = await sharp(shown).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  assert.equal(b.info.width, a.info.width * factor);
  for (let y = 0; y < a.info.height; y += 1) {
    for (let x = 0; x < a.info.width; x += 1) {
      const i = (y * a.info.width + x) * 3;
      const j = ((y * factor + factor - 1) * b.info.width + x * factor) * 3;
      assert.deepEqual([...b.data.subarray(j, j + 3)], [...a.data.subarray(i, i + 3)], `pixel ${x},${y}`);
    }
  }
  const [seenServed, seenShown] = [await detectImage(served), await detectImage(shown)];
  assert.deepEqual(seenShown.scene, seenServed.scene, 'the checker sees the same scene in what Discord shows');
});

test('/describe on held-out eval images: the real answers, right about the background', { skip }, async () => {
  const deployment = d as Deployment;
  const person = deployment.person('shapes-describe');
  const items = readFileSync(new URL('eval.jsonl', EVAL_DIR), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as { type: string; kind?: string; images?: string[]; scene: { background: string } })
    .filter((item) => item.type === 'understand')
    .slice(0, 3);
  let right = 0;
  const wrong: string[] = [];
  for (const item of items) {
    const bytes = readFileSync(new URL(item.images?.[0] as string, EVAL_DIR));
    const upload = deployment.fake.upload(deployment.channel.id, 'eval.png', bytes, 'image/png');
    const ix = person.slash(deployment.channel, 'describe', { image: upload, question: 'What color is the background?' });
    const answer = await ix.waitForOriginal((m) => m.content.startsWith('💬'), 60_000);
    const turn = await turnAs(person.id, button(answer, 'reroll').split(':')[1] as string);
    assert.equal(answer.content.split('\n')[1], turn.text.replace(/([\\*_~`|>])/g, '\\$1'), 'the answer shown is the turn text');
    if (gradeAnswer(turn.text, `${item.scene.background}.`, 'background').ok) right += 1;
    else wrong.push(`${turn.text} (want ${item.scene.background})`);
  }
  assert.ok(right >= 2, `right about the background ${right}/3: ${wrong.join('; ')}`);
});
