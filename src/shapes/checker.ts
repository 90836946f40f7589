// The automatic checker: recovers a shapes-world scene from raw RGB pixels (see docs/shapes-world.md, "Checker").
//
//  1. Background: per-channel median of all pixels (objects cover < 20% of an image), nearest background colour.
//  2. Foreground: pixels farther than FG_THRESHOLD (RGB distance) from the measured background; 4-connected
//     components; components wider or taller than a cell are cut along the cell boundaries (blur can bridge the
//     gap between neighbours), specks below MIN_PIXELS are dropped.
//  3. Colour: the palette colour c that best explains the component as a blend of background b and c
//     (pixel ≈ b + α(c − b)); robust to anti-aliased or blurred edges and to small colour shifts.
//     Components of one colour whose centres fall in one cell are merged (noise can split an object).
//  4. Coverage α per pixel from that blend. Width W = Σ over columns of the column's max α, height H likewise over
//     rows (sub-pixel exact for anti-aliased shapes and unchanged by blur), mass M = Σα.
//     Fill M/(W·H): square ≈ 1, circle ≈ π/4, upright triangle ≈ 1/2; the α-centroid of an upright triangle sits
//     at ≈ 2/3 of its height, of a circle or square at 1/2. Size: (W+H)/2 against the midpoint of small and large.
//     Cell: the centre of the column/row max-α profiles (the centre of the bounding box).
//  5. Ghost blobs (strongest pixels less than half-way to their colour) and specks are ignored.
import {
  type Background, type Color, type Position, type RGB, type Shape, type Size,
  BACKGROUNDS, BACKGROUND_NAMES, COLORS, COLOR_NAMES, GRID, IMAGE_SIZE, MAX_OBJECTS, MIN_OBJECTS, POSITIONS, SIZES,
} from './vocab.ts';
import { type Scene, type ShapeObject, sortObjects } from './scene.ts';

export interface DetectedObject extends ShapeObject {
  /** Centre (bounding-box centre) in pixels of the analysed image. */
  cx: number;
  cy: number;
  /** Coverage-weighted width and height (pixels), mass (Σα), fill M/(W·H), α-centroid height / H. */
  width: number;
  height: number;
  mass: number;
  fill: number;
  centroidY: number;
  /** Mean coverage in the top and bottom corners of the box (outside the inscribed diamond). */
  cornerTop: number;
  cornerBottom: number;
  /** Mean residual (RGB distance) of the colour blend model: large values mean the colour is doubtful. */
  colorResidual: number;
}

export interface Detection {
  background: Background;
  /** Measured background RGB. */
  backgroundRgb: [number, number, number];
  /** Objects in reading order of their cells. */
  objects: DetectedObject[];
  /** The scene, or null when the image is not a valid scene (no object, more than 3, two in one cell). */
  scene: Scene | null;
  problems: string[];
  /** Faint blobs ignored (strongest pixels less than half-way from the background to any palette colour). */
  ignored: number;
}

export interface RawImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  /** 3 (RGB) or 4 (RGBA, alpha ignored). */
  channels: number;
}

export const FG_THRESHOLD = 48;
const ALPHA_FLOOR = 0.2;
/** Blobs whose strongest pixels are less than half-way from the background to their colour are ghosts, not objects. */
const MIN_PEAK_COVERAGE = 0.5;
const BASE_MIN_PIXELS = 12;
const BASE_MIN_MASS = 18;
const SIZE_THRESHOLD = (SIZES.small + SIZES.large) / 2;

function dist3(r: number, g: number, b: number, c: RGB | [number, number, number]): number {
  const dr = r - c[0];
  const dg = g - c[1];
  const db = b - c[2];
  return Math.sqrt(dr * dr + dg * dg + db * db);
}

function median(values: Uint8Array): number {
  const hist = new Uint32Array(256);
  for (const v of values) hist[v]!++;
  let acc = 0;
  const half = values.length / 2;
  for (let i = 0; i < 256; i++) {
    acc += hist[i]!;
    if (acc >= half) return i;
  }
  return 255;
}

export function nearestBackground(rgb: RGB | [number, number, number]): Background {
  let best: Background = 'white';
  let bestD = Infinity;
  for (const name of BACKGROUND_NAMES) {
    const d = dist3(rgb[0], rgb[1], rgb[2], BACKGROUNDS[name]);
    if (d < bestD) { bestD = d; best = name; }
  }
  return best;
}

/** Cell (row, column) of a point in an image of the given size. */
export function cellAt(x: number, y: number, width: number, height: number): Position {
  const col = Math.min(GRID - 1, Math.max(0, Math.floor((x / width) * GRID)));
  const row = Math.min(GRID - 1, Math.max(0, Math.floor((y / height) * GRID)));
  return POSITIONS[row * GRID + col]!;
}

interface Blob { pixels: number[] }

/** 4-connected components of mask (1 = foreground) restricted to the pixel list (or the whole image). */
function components(mask: Uint8Array, width: number, height: number, within?: number[]): Blob[] {
  const label = new Int32Array(width * height).fill(-1);
  const allowed = within ? new Uint8Array(width * height) : null;
  if (allowed && within) for (const p of within) allowed[p] = 1;
  const blobs: Blob[] = [];
  const seeds = within ?? Array.from({ length: width * height }, (_, i) => i);
  const stack: number[] = [];
  for (const s of seeds) {
    if (!mask[s] || label[s] !== -1) continue;
    const id = blobs.length;
    const pixels: number[] = [];
    label[s] = id;
    stack.push(s);
    while (stack.length > 0) {
      const p = stack.pop()!;
      pixels.push(p);
      const x = p % width;
      const y = (p - x) / width;
      const nbrs = [x > 0 ? p - 1 : -1, x < width - 1 ? p + 1 : -1, y > 0 ? p - width : -1, y < height - 1 ? p + width : -1];
      for (const q of nbrs) {
        if (q < 0 || !mask[q] || label[q] !== -1 || (allowed && !allowed[q])) continue;
        label[q] = id;
        stack.push(q);
      }
    }
    blobs.push({ pixels });
  }
  return blobs;
}

/** Detects the scene in raw pixels. Any square size works (cells and sizes scale with width/64). */
export function detect(image: RawImage): Detection {
  const { data, width, height, channels } = image;
  const n = width * height;
  const scale = width / IMAGE_SIZE;
  const R = new Uint8Array(n);
  const G = new Uint8Array(n);
  const B = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    R[i] = data[i * channels]!;
    G[i] = data[i * channels + 1]!;
    B[i] = data[i * channels + 2]!;
  }
  const bgRgb: [number, number, number] = [median(R), median(G), median(B)];
  const background = nearestBackground(bgRgb);

  // Foreground mask and components.
  const d = new Float32Array(n);
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    d[i] = dist3(R[i]!, G[i]!, B[i]!, bgRgb);
    mask[i] = d[i]! > FG_THRESHOLD ? 1 : 0;
  }
  const minPixels = BASE_MIN_PIXELS * scale * scale;
  const cellW = width / GRID;
  const cellH = height / GRID;
  let blobs = components(mask, width, height);
  // Cut blobs larger than a cell along the cell boundaries.
  const cut: Blob[] = [];
  for (const b of blobs) {
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const p of b.pixels) {
      const x = p % width, y = (p - x) / width;
      x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
    }
    if (x1 - x0 + 1 <= cellW && y1 - y0 + 1 <= cellH) { cut.push(b); continue; }
    const byCell = new Map<Position, number[]>();
    for (const p of b.pixels) {
      const x = p % width, y = (p - x) / width;
      const c = cellAt(x + 0.5, y + 0.5, width, height);
      const list = byCell.get(c) ?? [];
      list.push(p);
      byCell.set(c, list);
    }
    for (const part of byCell.values()) cut.push(...components(mask, width, height, part));
  }
  blobs = cut.filter((b) => b.pixels.length >= minPixels);

  // Colour of each blob by the blend model.
  const owner = new Int32Array(n).fill(-1);
  blobs.forEach((b, i) => { for (const p of b.pixels) owner[p] = i; });
  const blobColor: Color[] = [];
  const blobResidual: number[] = [];
  for (const b of blobs) {
    let maxD = 0;
    for (const p of b.pixels) maxD = Math.max(maxD, d[p]!);
    const core = b.pixels.filter((p) => d[p]! >= 0.5 * maxD);
    let best: Color = 'red';
    let bestScore = Infinity;
    for (const name of COLOR_NAMES) {
      const c = COLORS[name];
      const v = [c[0] - bgRgb[0], c[1] - bgRgb[1], c[2] - bgRgb[2]] as const;
      const vv = v[0] * v[0] + v[1] * v[1] + v[2] * v[2];
      let score = 0;
      let wsum = 0;
      for (const p of core) {
        const q0 = R[p]! - bgRgb[0], q1 = G[p]! - bgRgb[1], q2 = B[p]! - bgRgb[2];
        const a = Math.min(1.15, Math.max(0, (q0 * v[0] + q1 * v[1] + q2 * v[2]) / vv));
        const e0 = q0 - a * v[0], e1 = q1 - a * v[1], e2 = q2 - a * v[2];
        const w = d[p]!;
        score += w * Math.sqrt(e0 * e0 + e1 * e1 + e2 * e2);
        wsum += w;
      }
      score /= Math.max(1e-9, wsum);
      if (score < bestScore) { bestScore = score; best = name; }
    }
    blobColor.push(best);
    blobResidual.push(bestScore);
  }

  // Merge same-colour blobs whose centres share a cell.
  const groups = new Map<string, number[]>();
  blobs.forEach((b, i) => {
    let sx = 0, sy = 0;
    for (const p of b.pixels) { const x = p % width; sx += x + 0.5; sy += (p - x) / width + 0.5; }
    const cell = cellAt(sx / b.pixels.length, sy / b.pixels.length, width, height);
    const key = `${blobColor[i]}|${cell}`;
    groups.set(key, [...(groups.get(key) ?? []), i]);
  });

  const objects: DetectedObject[] = [];
  let faint = 0;
  const minMass = BASE_MIN_MASS * scale * scale;
  for (const members of groups.values()) {
    const color = blobColor[members[0]!]!;
    const memberSet = new Set(members);
    const c = COLORS[color];
    const pv = [c[0] - bgRgb[0], c[1] - bgRgb[1], c[2] - bgRgb[2]] as const;
    const pvv = pv[0] * pv[0] + pv[1] * pv[1] + pv[2] * pv[2];
    // The object's observed colour: mean of its member pixels that are (nearly) fully covered by the palette
    // colour's blend model; coverage α is then measured against it (robust to colour casts and contrast changes).
    const memberPixels = members.flatMap((i) => blobs[i]!.pixels);
    const pa = memberPixels.map((p) => ((R[p]! - bgRgb[0]) * pv[0] + (G[p]! - bgRgb[1]) * pv[1] + (B[p]! - bgRgb[2]) * pv[2]) / pvv);
    const peak = [...pa].sort((a, b) => b - a)[Math.floor(pa.length * 0.1)] ?? 1;
    if (peak < MIN_PEAK_COVERAGE) { faint++; continue; }
    let o0 = 0, o1 = 0, o2 = 0, on = 0;
    memberPixels.forEach((p, k) => {
      if (pa[k]! < 0.9 * peak) return;
      o0 += R[p]!; o1 += G[p]!; o2 += B[p]!; on++;
    });
    const v = on > 0 ? [o0 / on - bgRgb[0], o1 / on - bgRgb[1], o2 / on - bgRgb[2]] as const : pv;
    const vv = Math.max(1, v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    // Region: member pixels plus a 1-pixel ring of unowned pixels (anti-aliased edges below the threshold).
    const region = new Set<number>();
    for (const p of memberPixels) {
      region.add(p);
      const x = p % width, y = (p - x) / width;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx, yy = y + dy;
          if (xx < 0 || yy < 0 || xx >= width || yy >= height) continue;
          const q = yy * width + xx;
          if (owner[q] === -1 || memberSet.has(owner[q]!)) region.add(q);
        }
      }
    }
    const alpha = new Map<number, number>();
    const colMax = new Map<number, number>();
    const rowMax = new Map<number, number>();
    let mass = 0, my = 0;
    for (const p of region) {
      const q0 = R[p]! - bgRgb[0], q1 = G[p]! - bgRgb[1], q2 = B[p]! - bgRgb[2];
      let a = Math.min(1, Math.max(0, (q0 * v[0] + q1 * v[1] + q2 * v[2]) / vv));
      if (a < ALPHA_FLOOR) a = 0;
      if (a === 0) continue;
      alpha.set(p, a);
      const x = p % width, y = (p - x) / width;
      mass += a;
      my += a * (y + 0.5);
      colMax.set(x, Math.max(colMax.get(x) ?? 0, a));
      rowMax.set(y, Math.max(rowMax.get(y) ?? 0, a));
    }
    if (mass < minMass) continue;
    let W = 0, sx = 0, H = 0, sy = 0;
    for (const [x, a] of colMax) { W += a; sx += a * (x + 0.5); }
    for (const [y, a] of rowMax) { H += a; sy += a * (y + 0.5); }
    const cx = sx / W;
    const cy = sy / H;
    const fill = mass / (W * H);
    // α-centroid relative to the coverage-weighted vertical extent [cy - H/2, cy + H/2].
    const centroidY = (my / mass - (cy - H / 2)) / H;
    // Mean coverage in the corners of the box [cx ± W/2] x [cy ± H/2], beyond its inscribed diamond
    // (|u| + |v| > 1.4 in box units): empty for a circle, full for a square, bottom only for a triangle.
    let topSum = 0, topN = 0, botSum = 0, botN = 0;
    for (let y = Math.floor(cy - H / 2); y <= Math.ceil(cy + H / 2); y++) {
      for (let x = Math.floor(cx - W / 2); x <= Math.ceil(cx + W / 2); x++) {
        const u = (x + 0.5 - cx) / (W / 2), w = (y + 0.5 - cy) / (H / 2);
        if (Math.abs(u) > 1 || Math.abs(w) > 1 || Math.abs(u) + Math.abs(w) <= 1.4) continue;
        const a = alpha.get(y * width + x) ?? 0;
        if (w < 0) { topSum += a; topN++; } else { botSum += a; botN++; }
      }
    }
    const cornerTop = topN > 0 ? topSum / topN : 0;
    const cornerBottom = botN > 0 ? botSum / botN : 0;
    const extent = (W + H) / 2 / scale;
    const size: Size = extent >= SIZE_THRESHOLD ? 'large' : 'small';
    const shape = classifyShape(fill, centroidY, cornerTop, cornerBottom);
    const residual = members.reduce((s, i) => s + blobResidual[i]!, 0) / members.length;
    objects.push({
      shape, color, size, position: cellAt(cx, cy, width, height),
      cx, cy, width: W, height: H, mass, fill, centroidY, cornerTop, cornerBottom, colorResidual: residual,
    });
  }

  const sorted = sortObjects(objects);
  const problems: string[] = [];
  if (sorted.length < MIN_OBJECTS) problems.push('no object found');
  if (sorted.length > MAX_OBJECTS) problems.push(`${sorted.length} objects found (at most ${MAX_OBJECTS})`);
  const cells = new Set<string>();
  for (const o of sorted) {
    if (cells.has(o.position)) problems.push(`two objects ${o.position}`);
    cells.add(o.position);
  }
  const scene: Scene | null = problems.length > 0 ? null : {
    background,
    objects: sorted.map((o) => ({ shape: o.shape, color: o.color, size: o.size, position: o.position })),
  };
  return { background, backgroundRgb: bgRgb, objects: sorted, scene, problems, ignored: faint };
}

/** Shape from the coverage features (thresholds tuned on the fixtures, clean and perturbed; see the docs).
 * Triangle evidence: centroid low (≈0.64 vs 0.5), bottom corners full but top corners empty, low fill (≈0.55).
 * Square vs circle evidence: fill (1 vs 0.785) and corner coverage (≈0.8 vs ≈0.1). */
export function classifyShape(fill: number, centroidY: number, cornerTop: number, cornerBottom: number): Shape {
  const triangle = (centroidY - 0.5) / 0.14 + (cornerBottom - cornerTop) / 0.6 + (0.78 - fill) / 0.25;
  if (triangle > 1.3) return 'triangle';
  const square = (fill - 0.79) / 0.21 + ((cornerTop + cornerBottom) / 2 - 0.15) / 0.45;
  return square > 1 ? 'square' : 'circle';
}
