/**
 * Uploaded images (`ImageInput.base64`): decoded and checked before the model sees them. PNG or JPEG only, at most
 * `maxUploadBytes` bytes and `maxUploadPixels` pixels (read from the header, before decoding). The stored copy, the
 * one `Image.url` serves, is the upload as a PNG that fits in 1024×1024: the model only ever sees it resized to
 * its input size, and the tokens are the truth.
 */
import sharp from 'sharp';
import type { Limits } from '../config.ts';
import { UserFailure } from '../errors.ts';

/** Side of the stored copy of an upload. */
export const STORED_UPLOAD_SIDE = 1024;

export interface Upload {
  bytes: Buffer;
  /** The stored copy. */
  png: Buffer;
  width: number;
  height: number;
}

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

export async function readUpload(base64: string, limits: Pick<Limits, 'maxUploadBytes' | 'maxUploadPixels'>, field: string[]): Promise<Upload> {
  const text = base64.replace(/^data:image\/[a-z]+;base64,/, '').replace(/\s+/g, '');
  if (text.length > Math.ceil((limits.maxUploadBytes * 4) / 3) + 4) {
    throw new UserFailure('IMAGE_TOO_LARGE', `the image is larger than the limit of ${limits.maxUploadBytes} bytes`, field);
  }
  if (text.length === 0 || !BASE64.test(text)) throw new UserFailure('INVALID_IMAGE', 'the image is not valid base64', field);
  const bytes = Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
  if (bytes.length > limits.maxUploadBytes) {
    throw new UserFailure('IMAGE_TOO_LARGE', `the image has ${bytes.length} bytes, more than the limit of ${limits.maxUploadBytes}`, field);
  }
  const isPng = bytes.length > 8 && bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  const isJpeg = bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
  if (!isPng && !isJpeg) throw new UserFailure('INVALID_IMAGE', 'the image must be a PNG or a JPEG', field);
  let width = 0;
  let height = 0;
  try {
    const metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
    width = metadata.width ?? 0;
    height = metadata.height ?? 0;
    if ((metadata.pages ?? 1) > 1) throw new UserFailure('INVALID_IMAGE', 'animated images are not accepted', field);
  } catch (error) {
    if (error instanceof UserFailure) throw error;
    throw new UserFailure('INVALID_IMAGE', 'the image cannot be read', field);
  }
  if (width <= 0 || height <= 0) throw new UserFailure('INVALID_IMAGE', 'the image has no pixels', field);
  if (width * height > limits.maxUploadPixels) {
    throw new UserFailure(
      'IMAGE_TOO_LARGE',
      `the image is ${width}×${height} = ${width * height} pixels, more than the limit of ${limits.maxUploadPixels}`,
      field,
    );
  }
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: limits.maxUploadPixels, failOn: 'error' })
      .rotate()
      .resize({ width: STORED_UPLOAD_SIDE, height: STORED_UPLOAD_SIDE, fit: 'inside', withoutEnlargement: true })
      .png()
      .toBuffer({ resolveWithObject: true });
    return { bytes, png: data, width: info.width, height: info.height };
  } catch {
    throw new UserFailure('INVALID_IMAGE', 'the image data is corrupt', field);
  }
}
