import type { Manifest } from './manifest.ts';
import type { TextTokenizer } from './tokenizer.ts';

/**
 * How the LLM numbers its tokens (`llm.positions` in the manifest):
 * - `sequential` (Tar's, the default): a token's position is its index.
 * - `shared-edits`: an image the assistant writes in answer to a user turn that holds an image of the same scale
 *   takes that image's positions, token by token, so that what an edit keeps is copied from a fixed relative
 *   position (0) instead of a prompt-dependent one. Every other token keeps its index.
 * The rule reads only token ids, so a prompt whose history holds earlier edits gets the positions it was trained
 * with. Reference: training/dialect_tar/positions.py (the same rule, used to train such a bundle).
 */
export type PositionScheme = 'sequential' | 'shared-edits';

export const POSITION_SCHEMES: readonly PositionScheme[] = ['sequential', 'shared-edits'];

/** Position ids of a token sequence (a prompt, or a prompt and the answer so far). */
export type PositionRule = (ids: readonly number[]) => number[];

export const sequentialPositions: PositionRule = (ids) => Array.from(ids, (_, i) => i);

/** The rule of the bundle's scheme; undefined for `sequential`, the indices the decoder feeds by default. */
export function positionRule(manifest: Manifest, tokenizer: TextTokenizer): PositionRule | undefined {
  if ((manifest.llm.positions ?? 'sequential') === 'sequential') return undefined;
  const header = tokenizer.encode(manifest.chat.turnStart.replace('{role}', 'assistant'));
  const t = manifest.tokens;
  return sharedEditPositions({
    turnStart: header[0] as number,
    assistantHeader: header,
    imStart: t.imStart,
    scaleTokens: t.scaleTokens,
    imageBase: t.imageBase,
    imageCount: t.imageCount,
  });
}

export interface SharedEditTokens {
  /** The id that starts every chat turn (`<|im_start|>`). */
  turnStart: number;
  /** The ids of an assistant turn's start (`<|im_start|>assistant\n`). */
  assistantHeader: readonly number[];
  imStart: number;
  scaleTokens: readonly number[];
  imageBase: number;
  imageCount: number;
}

export function sharedEditPositions(tokens: SharedEditTokens): PositionRule {
  const { turnStart, assistantHeader, imStart, imageBase } = tokens;
  const scaleTokens = new Set(tokens.scaleTokens);
  const isImage = (id: number | undefined) => id !== undefined && id >= imageBase && id < imageBase + tokens.imageCount;
  const isAssistantTurn = (ids: readonly number[], at: number) => assistantHeader.every((id, k) => ids[at + k] === id);
  return (ids) => {
    const positions = sequentialPositions(ids);
    const turns: number[] = [];
    const images: { start: number; scale: number }[] = []; // index of the first image token, scale token id
    ids.forEach((id, i) => {
      if (id === turnStart) turns.push(i);
      else if (id === imStart && scaleTokens.has(ids[i + 1] as number)) images.push({ start: i + 2, scale: ids[i + 1] as number });
    });
    for (const image of images) {
      const own = turns.filter((t) => t < image.start);
      const answerTurn = own.at(-1);
      const userTurn = own.at(-2);
      if (answerTurn === undefined || userTurn === undefined || !isAssistantTurn(ids, answerTurn)) continue;
      const source = images.filter((s) => s.start > userTurn && s.start < answerTurn && s.scale === image.scale).at(-1);
      if (source === undefined) continue;
      for (let i = 0; isImage(ids[image.start + i]) && isImage(ids[source.start + i]); i++) {
        positions[image.start + i] = positions[source.start + i] as number;
      }
    }
    return positions;
  };
}
