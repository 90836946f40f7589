// Helpers for the shapes tests: the committed fixtures (tests/fixtures/shapes, written by
// `training/py -m shapes.fixtures`) and image perturbations that imitate imperfect model output.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { RawImage } from '../../src/shapes/checker.ts';
import { type Scene, parseScene } from '../../src/shapes/scene.ts';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'shapes');

export interface FixtureItem { seed: number; scene: Scene; description: string; image: RawImage }

export function readJson<T>(name: string): T {
  return JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as T;
}

/** Cuts an RGB sprite sheet into tiles (row-major, perRow tiles a row). */
async function tiles(file: string, tile: number, perRow: number, count: number): Promise<RawImage[]> {
  const { data, info } = await sharp(join(FIXTURES, file)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return Array.from({ length: count }, (_, i) => {
    const ox = (i % perRow) * tile;
    const oy = Math.floor(i / perRow) * tile;
    const out = new Uint8Array(tile * tile * 3);
    for (let y = 0; y < tile; y++) {
      const src = ((oy + y) * info.width + ox) * info.channels;
      out.set(data.subarray(src, src + tile * 3), y * tile * 3);
    }
    return { data: out, width: tile, height: tile, channels: 3 };
  });
}

let cache: FixtureItem[] | null = null;

/** The 200 Python-rendered scenes of sheet.png with their scenes and canonical descriptions. */
export async function loadFixtureScenes(): Promise<FixtureItem[]> {
  if (cache) return cache;
  const meta = readJson<{ tile: number; perRow: number; items: { seed: number; scene: unknown; description: string }[] }>('scenes.json');
  const images = await tiles('sheet.png', meta.tile, meta.perRow, meta.items.length);
  cache = meta.items.map((item, i) => ({ seed: item.seed, scene: parseScene(item.scene), description: item.description, image: images[i]! }));
  return cache;
}

export interface EditFixture {
  seed: number; op: string; instruction: string; canonical_instruction: string;
  scene: Scene; target: Scene; sourceImage: RawImage; targetImage: RawImage;
}

/** Python-rendered edits (edits.png: source and target tiles in turn) with their scenes and instructions. */
export async function loadEditFixtures(): Promise<EditFixture[]> {
  const meta = readJson<{ tile: number; perRow: number; items: { seed: number; op: string; instruction: string;
    canonical_instruction: string; scene: unknown; target: unknown }[] }>('edits.json');
  const images = await tiles('edits.png', meta.tile, meta.perRow, 2 * meta.items.length);
  return meta.items.map((e, i) => ({
    seed: e.seed, op: e.op, instruction: e.instruction, canonical_instruction: e.canonical_instruction,
    scene: parseScene(e.scene), target: parseScene(e.target), sourceImage: images[2 * i]!, targetImage: images[2 * i + 1]!,
  }));
}

/** Deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function clamp(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
}

function map(img: RawImage, f: (v: number, i: number) => number): RawImage {
  const out = new Uint8Array(img.data.length);
  for (let i = 0; i < out.length; i++) out[i] = clamp(f(img.data[i]!, i));
  return { ...img, data: out };
}

/** Gaussian noise of standard deviation sigma on every channel. */
export function addNoise(img: RawImage, sigma: number, seed: number): RawImage {
  const rnd = prng(seed);
  return map(img, (v) => {
    const g = Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());
    return v + sigma * g;
  });
}

/** Box blur with a (2r+1)x(2r+1) kernel (edges clamped). */
export function boxBlur(img: RawImage, r = 1): RawImage {
  const { width: w, height: h, channels: c } = img;
  const out = new Uint8Array(img.data.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let ch = 0; ch < c; ch++) {
        let s = 0, k = 0;
        for (let dy = -r; dy <= r; dy++) {
          for (let dx = -r; dx <= r; dx++) {
            const xx = Math.min(w - 1, Math.max(0, x + dx)), yy = Math.min(h - 1, Math.max(0, y + dy));
            s += img.data[(yy * w + xx) * c + ch]!;
            k++;
          }
        }
        out[(y * w + x) * c + ch] = clamp(s / k);
      }
    }
  }
  return { ...img, data: out };
}

/** Adds a constant offset per channel (a colour cast). */
export function colorShift(img: RawImage, shift: readonly [number, number, number]): RawImage {
  return map(img, (v, i) => v + shift[i % img.channels]!);
}

/** JPEG round trip at the given quality. */
export async function jpeg(img: RawImage, quality: number): Promise<RawImage> {
  const buf = await sharp(Buffer.from(img.data), { raw: { width: img.width, height: img.height, channels: 3 } })
    .jpeg({ quality }).toBuffer();
  const { data } = await sharp(buf).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { ...img, data: new Uint8Array(data) };
}
