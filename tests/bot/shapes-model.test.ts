/**
 * Real answers through Discord: the bot on the shipped miniature (models/tar-shapes). What people see is graded with
 * the shapes world's own checker: the image /imagine posts (after the bot's 8× upscale) meets its prompt, and
 * Describe on it (from its stored tokens) names what is in it. Skipped, saying so, until the bundle exists.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { SHIPPED_BUNDLE_DIR } from '../../src/eval/index.ts';
import { decodeImage, describe as describeScene, detect, gradeAnswer, gradeGeneration } from '../../src/shapes/index.ts';
import { type Deployment, isImageResult, startDeployment } from './harness.ts';

/** DIALECT_TEST_SHAPES_BUNDLE points at another tar-shapes bundle (a training run's export). */
const BUNDLE = process.env.DIALECT_TEST_SHAPES_BUNDLE ?? SHIPPED_BUNDLE_DIR;
const present = existsSync(join(BUNDLE, 'manifest.json'));
const skip = present ? false : `no model bundle at ${BUNDLE} yet`;

let d: Deployment | undefined;
before(async () => {
  if (present) d = await startDeployment({ bundleDir: BUNDLE });
});
after(async () => {
  await d?.dispose();
});

test('/imagine draws what was asked, and Describe on it says what is there', { skip }, async () => {
  const deployment = d as Deployment;
  const person = deployment.person('grader');
  const prompt = 'a large red circle in the center on a white background';
  let generated = 0;
  let described = 0;
  const problems: string[] = [];
  for (const seed of [1, 2, 3]) {
    const result = await person.slash(deployment.channel, 'imagine', { prompt, seed }).waitForOriginal(isImageResult, 60_000);
    const image = await decodeImage(deployment.fake.attachmentBytes(result.attachments[0]!));
    const grade = gradeGeneration(image, prompt);
    if (grade.ok) generated += 1;
    else problems.push(`seed ${seed}: ${grade.problems.join('; ')}`);
    const scene = detect(image).scene;
    if (scene === null || scene === undefined) continue;
    const click = person.click(result, (id) => id.startsWith('describe:'));
    const answer = await click.waitForOriginal((m) => m.content.startsWith('💬'), 60_000);
    const text = answer.content.split('\n')[1] ?? '';
    const graded = gradeAnswer(text.replace(/\\(.)/g, '$1'), describeScene(scene), 'describe');
    if (graded.ok) described += 1;
    else problems.push(`seed ${seed} describe: ${graded.problems.join('; ')}`);
  }
  assert.ok(generated >= 2, `generation met the prompt ${generated}/3: ${problems.join(' | ')}`);
  assert.ok(described >= 2, `descriptions right ${described}/3: ${problems.join(' | ')}`);
});
