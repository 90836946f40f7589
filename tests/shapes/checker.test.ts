// The checker must recover the exact scene of >= 99% of the Python-rendered fixtures, clean and perturbed.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { type RawImage, detect } from '../../src/shapes/checker.ts';
import { decodeImage, encodePng } from '../../src/shapes/image.ts';
import { sceneKey } from '../../src/shapes/scene.ts';
import { type FixtureItem, addNoise, boxBlur, colorShift, loadFixtureScenes } from './fixtures.ts';

let items: FixtureItem[] = [];
before(async () => { items = await loadFixtureScenes(); });

function accuracy(perturb: (img: RawImage, i: number) => RawImage): { rate: number; failures: string[] } {
  let ok = 0;
  const failures: string[] = [];
  items.forEach((item, i) => {
    const d = detect(perturb(item.image, i));
    if (d.scene && sceneKey(d.scene) === sceneKey(item.scene)) ok++;
    else failures.push(`#${i} want ${sceneKey(item.scene)} got ${d.scene ? sceneKey(d.scene) : d.problems.join(', ')}`);
  });
  return { rate: ok / items.length, failures };
}

const cases: [string, number, (img: RawImage, i: number) => RawImage][] = [
  ['clean', 0.99, (img) => img],
  ['gaussian noise sigma 8', 0.99, (img, i) => addNoise(img, 8, 1000 + i)],
  ['3x3 box blur', 0.99, (img) => boxBlur(img, 1)],
  ['colour cast (+18, -15, +12)', 0.99, (img) => colorShift(img, [18, -15, 12])],
  ['blur + cast + noise 8', 0.99, (img, i) => addNoise(colorShift(boxBlur(img, 1), [-12, 10, 15]), 8, 2000 + i)],
  ['gaussian noise sigma 16', 0.97, (img, i) => addNoise(img, 16, 3000 + i)],
];

for (const [name, floor, perturb] of cases) {
  test(`checker recovers the scene: ${name} (>= ${floor * 100}%)`, () => {
    assert.ok(items.length >= 200, 'fixture set present');
    const { rate, failures } = accuracy(perturb);
    assert.ok(rate >= floor, `${(rate * 100).toFixed(1)}% < ${floor * 100}%\n${failures.slice(0, 5).join('\n')}`);
  });
}

test('checker finds nothing on a plain background and reports it', () => {
  const data = new Uint8Array(64 * 64 * 3).fill(128);
  const d = detect({ data, width: 64, height: 64, channels: 3 });
  assert.equal(d.background, 'gray');
  assert.equal(d.objects.length, 0);
  assert.equal(d.scene, null);
  assert.match(d.problems.join(), /no object/);
});

test('checker tells a changed image from the original (it can fail)', () => {
  // Paint the first object's cell with the background: the scene must change.
  const item = items.find((it) => it.scene.objects.length >= 2)!;
  const img = { ...item.image, data: new Uint8Array(item.image.data) };
  const bg = [img.data[0]!, img.data[1]!, img.data[2]!];
  const o = item.scene.objects[0]!;
  const cell = ['top left', 'top', 'top right', 'left', 'center', 'right', 'bottom left', 'bottom', 'bottom right'].indexOf(o.position);
  const cx = (cell % 3) * 64 / 3, cy = Math.floor(cell / 3) * 64 / 3;
  for (let y = Math.floor(cy); y < cy + 21; y++) for (let x = Math.floor(cx); x < cx + 21; x++) img.data.set(bg, (y * 64 + x) * 3);
  const d = detect(img);
  assert.ok(d.scene);
  assert.notEqual(sceneKey(d.scene), sceneKey(item.scene));
  assert.equal(d.objects.length, item.scene.objects.length - 1);
});

test('checker works through PNG and on upscaled images', async () => {
  const item = items[7]!;
  const png = await encodePng(item.image);
  const back = await decodeImage(png);
  assert.equal(sceneKey(detect(back).scene!), sceneKey(item.scene));
  const sharp = (await import('sharp')).default;
  const big = await sharp(png).resize(256, 256, { kernel: 'nearest' }).png().toBuffer();
  const down = await decodeImage(big);        // resized back to 64x64
  assert.equal(sceneKey(detect(down).scene!), sceneKey(item.scene));
  const raw256 = await sharp(big).removeAlpha().raw().toBuffer();
  assert.equal(sceneKey(detect({ data: new Uint8Array(raw256), width: 256, height: 256, channels: 3 }).scene!), sceneKey(item.scene));
});

test('checker ignores a faint ghost blob but finds a real extra object', () => {
  const item = items.find((it) => it.scene.objects.length === 1)!;
  const used = item.scene.objects[0]!.position;
  const free = ['top left', 'top', 'top right', 'left', 'center', 'right', 'bottom left', 'bottom', 'bottom right'].indexOf(used) === 4 ? 0 : 4;
  const paint = (alpha: number): RawImage => {
    const img = { ...item.image, data: new Uint8Array(item.image.data) };
    const cx = (free % 3) * 64 / 3 + 6, cy = Math.floor(free / 3) * 64 / 3 + 6;
    for (let y = Math.floor(cy); y < cy + 9; y++) {
      for (let x = Math.floor(cx); x < cx + 9; x++) {
        const k = (y * 64 + x) * 3;
        const target = [225, 25, 35];
        for (let c = 0; c < 3; c++) img.data[k + c] = Math.round(img.data[k + c]! * (1 - alpha) + target[c]! * alpha);
      }
    }
    return img;
  };
  const ghost = detect(paint(0.35));
  assert.equal(sceneKey(ghost.scene!), sceneKey(item.scene));
  assert.equal(ghost.ignored, 1);
  const real = detect(paint(1));
  assert.equal(real.objects.length, 2);
  assert.ok(real.objects.some((o) => o.color === 'red' && o.shape === 'square' && o.size === 'small'));
});
