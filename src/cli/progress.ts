import type { ProgressEvent } from '../model/index.ts';

/**
 * A one-line progress display on stderr. It draws only on a terminal, so that redirected output and CI logs stay
 * clean, and at most every 50 ms, so that drawing never slows a decode loop.
 */
export class ProgressLine {
  readonly #enabled: boolean;
  #lastDraw = 0;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.#enabled = stream.isTTY === true;
  }

  stage(event: ProgressEvent): void {
    this.#draw(`${event.stage} ${event.done}/${event.total}`, event.done / Math.max(1, event.total));
  }

  count(label: string, done: number, total: number): void {
    this.#draw(`${label} ${done}/${total}`, done / Math.max(1, total), done === total);
  }

  clear(): void {
    if (this.#enabled) this.stream.write('\r\x1b[2K');
  }

  #draw(label: string, fraction: number, force = false): void {
    if (!this.#enabled) return;
    const now = Date.now();
    if (!force && now - this.#lastDraw < 50) return;
    this.#lastDraw = now;
    const width = 24;
    const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
    this.stream.write(`\r\x1b[2K[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${label}`);
  }
}
