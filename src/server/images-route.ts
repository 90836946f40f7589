/**
 * PNGs of stored images at `/images/<id>.png?u=<user>&e=<expiry>&s=<signature>`. The URL is signed (HMAC-SHA256 over
 * user, image and expiry) by the API when it hands out `Image.url`, so `<img>` tags and the Discord bot can fetch it
 * without a key, nobody can forge one for someone else's image, and a leaked URL stops working when it expires.
 * Expiries are rounded up to the hour so that the same image keeps the same URL for a while (browser caches).
 *
 * When the PNG cache is empty the pixels are rendered from the tokens with the stored seed, then cached; concurrent
 * requests for one image share one render.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Database } from '../db/client.ts';
import { getImage, getImagePng, setImagePng } from '../db/images.ts';
import type { Model } from '../model/index.ts';
import type { Logger } from './logging.ts';

export class ImageUrlSigner {
  readonly #secret: Buffer;

  constructor(
    secret: string | undefined,
    private readonly ttlSeconds: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#secret = secret === undefined ? randomBytes(32) : Buffer.from(secret, 'utf8');
  }

  url(userId: string, imageId: string): string {
    const hour = 3600;
    const expires = Math.ceil((this.now() / 1000 + this.ttlSeconds) / hour) * hour;
    return `/images/${imageId}.png?u=${userId}&e=${expires}&s=${this.#sign(userId, imageId, expires)}`;
  }

  /** The user the URL was signed for, or null when it is forged, altered or expired. */
  verify(imageId: string, query: Record<string, unknown>): string | null {
    const { u, e, s } = query;
    if (typeof u !== 'string' || typeof e !== 'string' || typeof s !== 'string' || !/^\d{1,12}$/.test(e)) return null;
    const expires = Number(e);
    if (expires * 1000 < this.now()) return null;
    const expected = Buffer.from(this.#sign(u, imageId, expires));
    const given = Buffer.from(s);
    return given.length === expected.length && timingSafeEqual(given, expected) ? u : null;
  }

  #sign(userId: string, imageId: string, expires: number): string {
    return createHmac('sha256', this.#secret).update(`${userId}\n${imageId}\n${expires}`).digest('base64url');
  }
}

export function imagesRoute(deps: { database: Database; model: Model; signer: ImageUrlSigner; logger: Logger }) {
  const renders = new Map<string, Promise<Buffer>>();
  const render = async (userId: string, imageId: string): Promise<Buffer> => {
    const image = await getImage(deps.database, userId, imageId);
    const result = await deps.model.renderImage({
      tokens: image.tokens,
      scale: image.scale,
      ...(image.renderSeed === null ? {} : { seed: image.renderSeed }),
    });
    await setImagePng(deps.database, userId, imageId, result.png);
    return result.png;
  };
  return async (req: Request, res: Response): Promise<void> => {
    const imageId = String(req.params.id ?? '');
    const userId = deps.signer.verify(imageId, req.query as Record<string, unknown>);
    if (userId === null) {
      res.status(403).type('text/plain').send('invalid or expired image URL');
      return;
    }
    try {
      let png = await getImagePng(deps.database, userId, imageId);
      if (png === null) {
        let pending = renders.get(imageId);
        if (pending === undefined) {
          pending = render(userId, imageId).finally(() => renders.delete(imageId));
          renders.set(imageId, pending);
        }
        png = await pending;
      }
      res.set('Cache-Control', 'private, max-age=3600, immutable').type('image/png').send(png);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === 'NOT_FOUND') {
        res.status(404).type('text/plain').send('no such image');
        return;
      }
      deps.logger.error({ err: error, imageId }, 'image render failed');
      res.status(code === 'DATABASE_UNAVAILABLE' ? 503 : 500).type('text/plain').send('the image cannot be served now');
    }
  };
}
