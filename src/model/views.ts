/**
 * Views of an image for understanding.
 *
 * TA-Tok encodes the same pixels at every scale (81, 16 or 9 tokens for the shapes bundle), and the LLM was trained
 * to answer from each, but no scale carries everything: reading one question from several encodings of the image —
 * one prompt row per view, every row fed the same answer, their logits averaged at each step — answered more of the
 * shapes bundle's questions right than its best single scale did (docs/model-card.md, "The shipped bundle (1.3.2)").
 * It costs one more encoder run and one more decoder row per view.
 *
 * Only an image given as pixels can be encoded again: an image known only by its tokens (generated, or stored) is
 * read from the views that come with it, so a server that wants the same answers later stores an upload's views
 * beside its tokens.
 */
import { InvalidRequestError } from './errors.ts';
import { findScale, type Manifest, understandingOf } from './manifest.ts';

/**
 * The scales at which to keep views of an upload stored at `scale`: the bundle's whole reading (its understanding
 * scale and view scales) less `scale`. Read back with them, a stored image is read from the same encodings as an
 * upload asked about at the understanding scale, whatever scale it was stored at (an edit's input is stored at the
 * edit's scale).
 */
export function storedViewScales(manifest: Manifest, scale: number): number[] {
  const { scale: reading, viewScales } = understandingOf(manifest);
  return [...new Set([reading, ...viewScales])].filter((s) => s !== scale);
}

/**
 * The scales of an understanding request's extra views: the request's `viewScales` or the manifest's
 * `understanding.viewScales`, less the image's own scale (that view is the image itself) and repeats.
 */
export function resolveViewScales(manifest: Manifest, scale: number, requested?: readonly number[]): number[] {
  const scales = requested ?? understandingOf(manifest).viewScales;
  if (!Array.isArray(scales)) throw new InvalidRequestError('viewScales must be an array of scales');
  const known = manifest.scales.map((s) => s.scale);
  const out: number[] = [];
  for (const s of scales) {
    if (!Number.isInteger(s) || findScale(manifest, s) === undefined) {
      throw new InvalidRequestError(`viewScales must hold scales of the bundle (${known.join(', ')}), not ${JSON.stringify(s)}`);
    }
    if (s !== scale && !out.includes(s)) out.push(s);
  }
  return out;
}
