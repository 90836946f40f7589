import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { deflateSync } from 'node:zlib';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import { ImageTooLargeError, InvalidImageError } from '../../src/model/errors.ts';
import { chwToRgbBytes, imageToPixels, pixelsToPng, upscaleNearest } from '../../src/model/images.ts';
import { GOLDEN_DIR } from './helpers.ts';

const spec = { inputSize: 64, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], maxInputPixels: 16_777_216 };
let imageA: Buffer;

before(async () => {
  imageA = await readFile(join(GOLDEN_DIR, 'image_a.png'));
});

/** A valid PNG whose header announces `width × height` pixels but whose data is a few bytes. */
function pngHeaderOnly(width: number, height: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (bytes: Buffer) => {
    let c = 0xffffffff;
    for (const b of bytes) c = (crcTable[(c ^ b) & 0xff] as number) ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc(body), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(16))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('imageToPixels', () => {
  it('turns a 64×64 PNG into normalised CHW floats without resampling', async () => {
    const pixels = await imageToPixels(imageA, spec);
    assert.equal(pixels.length, 3 * 64 * 64);
    const { data } = await sharp(imageA).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    for (const i of [0, 777, 4095]) {
      for (let c = 0; c < 3; c++) assert.equal(pixels[c * 4096 + i], Math.fround(((data[i * 3 + c] as number) / 255 - 0.5) / 0.5));
    }
  });

  it('resizes other sizes and JPEG/WebP to the input size', async () => {
    for (const format of ['jpeg', 'webp', 'png'] as const) {
      const bytes = await sharp(imageA).resize(100, 37).toFormat(format).toBuffer();
      assert.equal((await imageToPixels(bytes, spec)).length, 3 * 64 * 64, format);
    }
  });

  it('flattens transparency over white', async () => {
    const clear = await sharp({ create: { width: 8, height: 8, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
    const pixels = await imageToPixels(clear, { ...spec, inputSize: 8 });
    assert.ok(pixels.every((v) => v === 1));
  });

  it('refuses bytes that are not an image, and empty input', async () => {
    await assert.rejects(imageToPixels(Buffer.from('definitely not an image'), spec), (e: unknown) => e instanceof InvalidImageError && e.code === 'INVALID_IMAGE');
    await assert.rejects(imageToPixels(new Uint8Array(0), spec), /the image is empty/);
  });

  it('refuses a truncated PNG', async () => {
    await assert.rejects(imageToPixels(imageA.subarray(0, 200), spec), InvalidImageError);
  });

  it('refuses other formats (GIF)', async () => {
    const gif = await sharp(imageA).gif().toBuffer();
    await assert.rejects(imageToPixels(gif, spec), /must be PNG, JPEG or WebP, not gif/);
  });

  it('refuses animated images', async () => {
    const frame = (background: string) => sharp({ create: { width: 8, height: 8, channels: 3, background } }).png().toBuffer();
    const frames = await sharp([await frame('red'), await frame('blue')], { join: { animated: true } }).webp().toBuffer();
    await assert.rejects(imageToPixels(frames, spec), /animated or multi-page images are not accepted \(this one has 2 frames\)/);
  });

  it('refuses oversized images from the header, before decoding', async () => {
    const bomb = pngHeaderOnly(50_000, 50_000);
    await assert.rejects(imageToPixels(bomb, spec), (e: unknown) => {
      assert.ok(e instanceof ImageTooLargeError);
      assert.equal(e.code, 'IMAGE_TOO_LARGE');
      assert.equal(e.pixels, 2_500_000_000);
      assert.match(e.message, /50000×50000 = 2500000000 pixels, more than the limit of 16777216/);
      return true;
    });
    await assert.rejects(imageToPixels(imageA, { ...spec, maxInputPixels: 4095 }), ImageTooLargeError);
  });
});

describe('output images', () => {
  it('rounds and clamps [0, 1] floats to bytes', () => {
    const size = 1;
    assert.deepEqual([...chwToRgbBytes([-0.2, 0.5, 1.7], size)], [0, 128, 255]);
  });

  it('writes a PNG that reads back exactly', async () => {
    const size = 4;
    const pixels = Float32Array.from({ length: 48 }, (_, i) => i / 47);
    const png = await pixelsToPng(pixels, size);
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height, info.channels], [4, 4, 3]);
    assert.deepEqual([...data], [...chwToRgbBytes(pixels, size)]);
  });

  it('upscales pixel-exactly with nearest neighbour', async () => {
    const png = await pixelsToPng(Float32Array.from({ length: 12 }, (_, i) => (i % 4) / 3), 2);
    const big = await upscaleNearest(png, 3);
    const small = await sharp(png).raw().toBuffer();
    const { data, info } = await sharp(big).raw().toBuffer({ resolveWithObject: true });
    assert.equal(info.width, 6);
    for (let y = 0; y < 6; y++) {
      for (let x = 0; x < 6; x++) {
        const src = (Math.floor(y / 3) * 2 + Math.floor(x / 3)) * 3;
        assert.deepEqual([...data.subarray((y * 6 + x) * 3, (y * 6 + x) * 3 + 3)], [...small.subarray(src, src + 3)]);
      }
    }
  });
});
