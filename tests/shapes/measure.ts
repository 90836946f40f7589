// Measures the checker on an eval set written by `training/py -m shapes.dataset eval --out DIR` (every scene PNG
// of every record), clean and perturbed:   npx tsx tests/shapes/measure.ts DIR [limit]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type RawImage, detect } from '../../src/shapes/checker.ts';
import { decodeImage } from '../../src/shapes/image.ts';
import { parseScene, sceneKey } from '../../src/shapes/scene.ts';
import { addNoise, boxBlur, colorShift, jpeg } from './fixtures.ts';

const dir = process.argv[2];
if (!dir) throw new Error('usage: measure.ts EVAL_DIR [limit]');
const limit = Number(process.argv[3] ?? Infinity);
const pairs: { png: string; key: string }[] = [];
for (const line of readFileSync(join(dir, 'eval.jsonl'), 'utf8').split('\n')) {
  if (!line.trim()) continue;
  const rec = JSON.parse(line) as { type: string; images: string[]; scene?: unknown; target?: unknown; scenes?: unknown[] };
  const scenes = rec.type === 'edit' ? [rec.scene, rec.target] : rec.type === 'multiturn' ? rec.scenes! : [rec.scene];
  scenes.forEach((s, i) => pairs.push({ png: join(dir, rec.images[i]!), key: sceneKey(parseScene(s)) }));
  if (pairs.length >= limit) break;
}
const variants: [string, (img: RawImage, i: number) => RawImage | Promise<RawImage>][] = [
  ['clean', (img) => img],
  ['noise8', (img, i) => addNoise(img, 8, i)],
  ['noise16', (img, i) => addNoise(img, 16, i)],
  ['blur3x3', (img) => boxBlur(img, 1)],
  ['blur3x3x2', (img) => boxBlur(boxBlur(img, 1), 1)],
  ['cast', (img) => colorShift(img, [18, -15, 12])],
  ['blur+cast+noise8', (img, i) => addNoise(colorShift(boxBlur(img, 1), [-12, 10, 15]), 8, i)],
  ['jpeg90', (img) => jpeg(img, 90)],
];
const images = await Promise.all(pairs.map((p) => decodeImage(p.png)));
for (const [name, f] of variants) {
  let ok = 0;
  const t0 = performance.now();
  for (let i = 0; i < images.length; i++) {
    const d = detect(await f(images[i]!, i));
    if (d.scene && sceneKey(d.scene) === pairs[i]!.key) ok++;
  }
  const ms = (performance.now() - t0) / images.length;
  console.log(`${name.padEnd(18)} ${ok}/${images.length} = ${((100 * ok) / images.length).toFixed(2)}%  (${ms.toFixed(2)} ms/image)`);
}
