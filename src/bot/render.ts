/**
 * What images look like in Discord. The model writes small images (64×64 in the shapes world), which Discord would
 * show as a blur; they are scaled up by an integer factor with nearest-neighbour sampling, so every model pixel is an
 * exact square of identical pixels. Token grids are shown as text (a fixed-width table) and as a small picture.
 */
import { createHash } from 'node:crypto';
import sharp from 'sharp';

/** Target side of an upscaled image in Discord. Defaults to 512 px. */
export const DISPLAY_SIZE = 512;

/** Scales a PNG up by the largest integer factor that keeps it within `size` (never down), pixel-exact. */
export async function upscalePng(png: Buffer, size = DISPLAY_SIZE): Promise<{ png: Buffer; factor: number; width: number; height: number }> {
  const meta = await sharp(png).metadata();
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  const factor = Math.max(1, Math.floor(size / Math.max(width, height, 1)));
  if (factor === 1) return { png, factor, width, height };
  const out = await sharp(png)
    .resize(width * factor, height * factor, { kernel: 'nearest' })
    .png({ compressionLevel: 9, palette: false })
    .toBuffer();
  return { png: out, factor, width: width * factor, height: height * factor };
}

/** The token grid as a fixed-width table, one row per grid row. */
export function tokenGridText(tokens: readonly number[], grid: number): string {
  const width = Math.max(...tokens.map((t) => String(t).length), 1);
  const rows: string[] = [];
  for (let r = 0; r < grid; r += 1) {
    rows.push(tokens.slice(r * grid, (r + 1) * grid).map((t) => String(t).padStart(width)).join(' '));
  }
  return rows.join('\n');
}

/** A picture of the token grid: one cell per token, coloured by its id (same id, same colour), `cell` px a side. */
export async function tokenGridPng(tokens: readonly number[], grid: number, cell = Math.max(4, Math.floor(DISPLAY_SIZE / grid))): Promise<Buffer> {
  const raw = Buffer.alloc(grid * grid * 3);
  tokens.forEach((token, i) => {
    const hash = createHash('sha256').update(String(token)).digest();
    raw[i * 3] = 40 + ((hash[0] as number) % 200);
    raw[i * 3 + 1] = 40 + ((hash[1] as number) % 200);
    raw[i * 3 + 2] = 40 + ((hash[2] as number) % 200);
  });
  return sharp(raw, { raw: { width: grid, height: grid, channels: 3 } })
    .resize(grid * cell, grid * cell, { kernel: 'nearest' })
    .png()
    .toBuffer();
}
