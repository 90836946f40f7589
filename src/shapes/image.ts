// Decoding images for the checker (sharp): any format sharp reads, resized to 64x64 when it is another size.
import sharp from 'sharp';
import { type Detection, type RawImage, detect } from './checker.ts';
import { IMAGE_SIZE } from './vocab.ts';

/** Decodes an image (file path or encoded bytes) to 64x64 RGB. */
export async function decodeImage(input: string | Buffer | Uint8Array, size: number = IMAGE_SIZE): Promise<RawImage> {
  let img = sharp(input).removeAlpha().toColourspace('srgb');
  const meta = await sharp(input).metadata();
  if (meta.width !== size || meta.height !== size) img = img.resize(size, size, { fit: 'fill', kernel: 'lanczos3' });
  const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, channels: info.channels };
}

/** Detects the scene in an encoded image (PNG, JPEG, ...). */
export async function detectImage(input: string | Buffer | Uint8Array): Promise<Detection> {
  return detect(await decodeImage(input));
}

/** Encodes raw RGB pixels as PNG (for saving what the checker looked at). */
export async function encodePng(image: RawImage): Promise<Buffer> {
  return sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.length), {
    raw: { width: image.width, height: image.height, channels: image.channels as 3 | 4 },
  }).png().toBuffer();
}
