/**
 * The tokens of images recently read or stored (with an upload's views), by user and id, so that a request naming an image by id (the
 * common case: ask about or edit the image one just made or uploaded) starts the model without reading the row.
 * Image tokens never change once stored, so an entry cannot be stale in content; it can outlive a deleted image,
 * which is harmless: the cache only serves the model's input, and startTurn checks in the same statement that
 * writes the turn that the image exists and is the user's (NOT_FOUND otherwise, with nothing written). Keys carry
 * the user id, so a user never gets another's tokens. Bounded (least recently used out).
 */
import type { ImageWithViews } from '../../model/index.ts';

export class ImageTokenCache {
  readonly #entries = new Map<string, ImageWithViews>();

  constructor(private readonly capacity = 512) {}

  get(userId: string, imageId: string): ImageWithViews | undefined {
    const key = `${userId}:${imageId}`;
    const hit = this.#entries.get(key);
    if (hit !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, hit);
    }
    return hit;
  }

  set(userId: string, imageId: string, tokens: ImageWithViews): void {
    const key = `${userId}:${imageId}`;
    this.#entries.delete(key);
    this.#entries.set(key, tokens);
    while (this.#entries.size > this.capacity) this.#entries.delete(this.#entries.keys().next().value as string);
  }

  get size(): number {
    return this.#entries.size;
  }
}
