import sharp, { type Metadata } from 'sharp';
import { ImageTooLargeError, InvalidImageError } from './errors.ts';

/** How uploads become encoder input; the manifest's `image` section. */
export interface PixelSpec {
  /** Side of the square encoder input. */
  inputSize: number;
  mean: readonly number[];
  std: readonly number[];
  /** Uploads with more pixels (width × height, from the header) are refused before decoding. */
  maxInputPixels: number;
}

const ACCEPTED_FORMATS = new Set(['png', 'jpeg', 'webp']);

/** Transparent pixels are composed over white, which keeps dark line art on a transparent background visible. */
const FLATTEN_BACKGROUND = { r: 255, g: 255, b: 255 };

/**
 * Decodes a PNG, JPEG or WebP upload into the encoder's input: float32 CHW `[3, S, S]`, `(x/255 - mean) / std`.
 *
 * The header is read first and the pixel count checked against `maxInputPixels` before any decoding, so a
 * decompression bomb costs nothing. Refused: bytes that are not one of the three formats, animated or multi-page
 * images, and images whose data is corrupt. Then: EXIF orientation applied, alpha flattened over white, converted
 * to sRGB, and resized to S×S ignoring the aspect ratio (as SigLIP's processor, which TA-Tok's ViT was trained
 * with, does) with sharp's `linear` kernel: bilinear interpolation whose support widens with the shrink factor,
 * that is, an anti-aliased triangle filter like PIL's BILINEAR.
 */
export async function imageToPixels(bytes: Uint8Array, spec: PixelSpec): Promise<Float32Array> {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) {
    throw new InvalidImageError('the image is empty');
  }
  let metadata: Metadata;
  try {
    metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw new InvalidImageError('the bytes are not a readable image (PNG, JPEG or WebP expected)', { cause: error });
  }
  if (metadata.format === undefined || !ACCEPTED_FORMATS.has(metadata.format)) {
    throw new InvalidImageError(`images must be PNG, JPEG or WebP, not ${metadata.format ?? 'an unknown format'}`);
  }
  const width = metadata.width ?? 0;
  const height = metadata.height ?? 0;
  if (width <= 0 || height <= 0) throw new InvalidImageError('the image has no pixels');
  const pixels = width * height;
  if (pixels > spec.maxInputPixels) {
    throw new ImageTooLargeError(
      `the image is ${width}×${height} = ${pixels} pixels, more than the limit of ${spec.maxInputPixels}`,
      pixels,
      spec.maxInputPixels,
    );
  }
  if ((metadata.pages ?? 1) > 1) {
    throw new InvalidImageError(`animated or multi-page images are not accepted (this one has ${metadata.pages} frames)`);
  }
  const size = spec.inputSize;
  let raw: Buffer;
  try {
    raw = await sharp(bytes, { limitInputPixels: spec.maxInputPixels, failOn: 'error' })
      .rotate()
      .flatten({ background: FLATTEN_BACKGROUND })
      .toColourspace('srgb')
      .resize(size, size, { fit: 'fill', kernel: 'linear' })
      .removeAlpha()
      .raw()
      .toBuffer();
  } catch (error) {
    throw new InvalidImageError(`the image could not be decoded: ${(error as Error).message}`, { cause: error });
  }
  if (raw.length !== size * size * 3) {
    throw new InvalidImageError(`the image decoded to ${raw.length} bytes, expected ${size * size * 3} (RGB)`);
  }
  return hwcToNormalisedChw(raw, size, spec.mean, spec.std);
}

/** RGB bytes (HWC) to float32 CHW `(x/255 - mean) / std`. */
export function hwcToNormalisedChw(
  raw: Uint8Array,
  size: number,
  mean: readonly number[],
  std: readonly number[],
): Float32Array {
  const plane = size * size;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const m = mean[c] as number;
    const s = std[c] as number;
    for (let i = 0; i < plane; i++) out[c * plane + i] = ((raw[i * 3 + c] as number) / 255 - m) / s;
  }
  return out;
}

/** The VQ decoder's float CHW output in [0, 1] to RGB bytes HWC: round(x · 255), clamped to 0…255. */
export function chwToRgbBytes(pixels: ArrayLike<number>, size: number): Uint8Array {
  const plane = size * size;
  if (pixels.length < 3 * plane) throw new RangeError(`expected ${3 * plane} values, found ${pixels.length}`);
  const out = new Uint8Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) {
      const v = Math.round((pixels[c * plane + i] as number) * 255);
      out[i * 3 + c] = v < 0 ? 0 : v > 255 ? 255 : v; // NaN becomes 0 through the typed array
    }
  }
  return out;
}

/** Encodes the VQ decoder's output (float CHW `[3, size, size]` in [0, 1]) as a PNG. */
export async function pixelsToPng(pixels: ArrayLike<number>, size: number): Promise<Buffer> {
  const rgb = chwToRgbBytes(pixels, size);
  return sharp(rgb, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
}

/**
 * A pixel-exact enlargement for display: every pixel becomes a `factor × factor` block (nearest neighbour), so a
 * 64-pixel miniature output stays crisp at 512.
 */
export async function upscaleNearest(png: Uint8Array, factor: number): Promise<Buffer> {
  if (!Number.isInteger(factor) || factor < 1 || factor > 64) {
    throw new RangeError(`factor must be an integer in 1…64, not ${factor}`);
  }
  const image = sharp(png);
  const { width = 0, height = 0 } = await image.metadata();
  return image.resize(width * factor, height * factor, { kernel: 'nearest' }).png().toBuffer();
}
