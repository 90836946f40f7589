import { BundleError } from './errors.ts';
import { POSITION_SCHEMES, type PositionScheme } from './positions.ts';
import type { DetokSampling, ImageSampling, TextSampling } from './sampling.ts';

/** The graph files of a bundle, by manifest key. */
export const GRAPH_KEYS = ['taTokEncoder', 'taTokDecoder', 'llm', 'arDTok', 'vqDecoder'] as const;
export type GraphKey = (typeof GRAPH_KEYS)[number];

export type TensorDtype = 'float32' | 'float16';

/** One pool scale of the TA-Tok encoder: the pooled grid side and its token count (grid²). */
export interface ScaleInfo {
  scale: number;
  grid: number;
  tokens: number;
}

/** `manifest.json` of a `dialect-bundle/1` folder, as documented in docs/bundle-format.md. */
export interface Manifest {
  format: 'dialect-bundle/1';
  name: string;
  version: string;
  description: string;
  experimental: string[];
  files: Record<GraphKey | 'tokenizer', string>;
  image: { inputSize: number; mean: number[]; std: number[]; outputSize: number; maxInputPixels: number };
  tokens: {
    imStart: number;
    imEnd: number;
    scaleTokens: number[];
    imageBase: number;
    imageCount: number;
    eos: number[];
    pad: number;
  };
  scales: ScaleInfo[];
  defaultScale: number;
  /**
   * How understanding reads an image given as pixels: encoded at `scale` (absent: `defaultScale`, the scale of
   * generation), and also at each of `viewScales`, every encoding one more view of the image that the answer is
   * decoded from (views.ts; absent: none). A bundle may read images best at another scale than it writes them.
   */
  understanding?: { scale?: number; viewScales?: number[] };
  /**
   * How an edit reads an image given as pixels: encoded at `scale` (absent: `defaultScale`), which is also the scale
   * the edit is written at. An edit of an image given as tokens is written at that image's scale: a bundle that
   * copies what an edit keeps token by token copies badly across scales (docs/model-card.md).
   */
  editing?: { scale?: number };
  /**
   * Optional: how the model checks an image it writes when a request asks it to (`selfCheck: true`; self-check.ts):
   * it reads the first image's tokens with `question` and asks the judge `judge` (a function the runtime is given by
   * name, which knows the model's language: TarModelOptions.judgeModule) whether the reading meets the request; when
   * not, it writes `candidates` more at `temperature` and keeps the first that passes (else the first).
   */
  selfCheck?: SelfCheck;
  llm: {
    layers: number;
    kvHeads: number;
    headDim: number;
    vocabSize: number;
    maxPositions: number;
    rope: { theta: number };
    dtype: TensorDtype;
    /** How the LLM numbers its tokens (positions.ts); absent = `sequential`, as Tar. */
    positions?: PositionScheme;
  };
  taTok: { codebookSize: number; dtype: TensorDtype };
  arDTok: {
    layers: number;
    kvHeads: number;
    headDim: number;
    codebookSize: number;
    condDim: number;
    codes: number;
    maxPositions: number;
    dtype: TensorDtype;
  };
  vq: { grid: number; codebookSize: number; outputSize: number; dtype: TensorDtype };
  chat: { system: string | null; turnStart: string; turnEnd: string };
  templates: {
    image: string;
    understand: string;
    generate: string;
    edit: string;
    imageAnswerPrefix: string;
    /**
     * The prompt text of the unconditional row when image tokens are guided (`sampling.image.cfgScale` ≠ 1); absent
     * = `""`, the dropped prompt of a model trained with prompt dropout.
     */
    unconditionalPrompt?: string;
  };
  sampling: {
    text: TextSampling;
    image: ImageSampling;
    detok: DetokSampling;
  };
}

/**
 * A small checker that walks the JSON once and records every problem with its exact path (`tokens.eos[1]`), so that
 * a broken manifest is fixed in one go rather than one error per load.
 */
class Checker {
  readonly problems: string[] = [];

  problem(path: string, message: string): void {
    this.problems.push(`${path}: ${message}`);
  }

  object(value: unknown, path: string): Record<string, unknown> | undefined {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
    this.problem(path, `must be an object, found ${describe(value)}`);
    return undefined;
  }

  string(value: unknown, path: string, { nonEmpty = false } = {}): string | undefined {
    if (typeof value !== 'string') {
      this.problem(path, `must be a string, found ${describe(value)}`);
      return undefined;
    }
    if (nonEmpty && value.length === 0) this.problem(path, 'must not be empty');
    return value;
  }

  number(value: unknown, path: string, { min = -Infinity, max = Infinity, exclusiveMin = false } = {}) {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      this.problem(path, `must be a finite number, found ${describe(value)}`);
      return undefined;
    }
    if (exclusiveMin ? value <= min : value < min) {
      this.problem(path, `must be ${exclusiveMin ? '>' : '≥'} ${min}, found ${value}`);
    } else if (value > max) this.problem(path, `must be ≤ ${max}, found ${value}`);
    return value;
  }

  integer(value: unknown, path: string, { min = 0, max = Number.MAX_SAFE_INTEGER } = {}): number | undefined {
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
      this.problem(path, `must be an integer, found ${describe(value)}`);
      return undefined;
    }
    if (value < min) this.problem(path, `must be ≥ ${min}, found ${value}`);
    else if (value > max) this.problem(path, `must be ≤ ${max}, found ${value}`);
    return value;
  }

  array(value: unknown, path: string, { length }: { length?: number } = {}): unknown[] | undefined {
    if (!Array.isArray(value)) {
      this.problem(path, `must be an array, found ${describe(value)}`);
      return undefined;
    }
    if (length !== undefined && value.length !== length) {
      this.problem(path, `must have ${length} entries, found ${value.length}`);
    }
    return value;
  }

  dtype(value: unknown, path: string): void {
    if (value !== 'float32' && value !== 'float16') {
      this.problem(path, `must be "float32" or "float16", found ${describe(value)}`);
    }
  }

  placeholders(value: unknown, path: string, required: readonly string[], allowed: readonly string[]): void {
    const text = this.string(value, path);
    if (text === undefined) return;
    for (const name of required) {
      if (!text.includes(`{${name}}`)) this.problem(path, `must contain the placeholder {${name}}`);
    }
    for (const match of text.matchAll(/\{(\w+)\}/g)) {
      if (!allowed.includes(match[1] as string)) {
        this.problem(path, `has the unknown placeholder {${match[1]}} (allowed here: ${allowed.map((a) => `{${a}}`).join(', ') || 'none'})`);
      }
    }
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  const text = JSON.stringify(value);
  return `${typeof value} ${text.length > 40 ? `${text.slice(0, 40)}…` : text}`;
}

/**
 * Validates a parsed `manifest.json`. Throws one {@link BundleError} listing every bad field by its path, prefixed
 * with `source` (the manifest's file path) so that the message says where to look.
 */
export function parseManifest(json: unknown, source = 'manifest.json'): Manifest {
  const c = new Checker();
  const root = c.object(json, '(root)');
  if (root === undefined) throw new BundleError(`${source} is invalid:\n  ${c.problems.join('\n  ')}`);
  const m = root;
  if (m.format !== 'dialect-bundle/1') {
    c.problem('format', `must be "dialect-bundle/1", found ${describe(m.format)}`);
  }
  c.string(m.name, 'name', { nonEmpty: true });
  c.string(m.version, 'version', { nonEmpty: true });
  c.string(m.description, 'description');
  const experimental = c.array(m.experimental, 'experimental');
  experimental?.forEach((task, i) => {
    if (task !== 'understand' && task !== 'generate' && task !== 'edit') {
      c.problem(`experimental[${i}]`, `must be "understand", "generate" or "edit", found ${describe(task)}`);
    }
  });

  const files = c.object(m.files, 'files');
  if (files !== undefined) {
    for (const key of [...GRAPH_KEYS, 'tokenizer'] as const) {
      const file = c.string(files[key], `files.${key}`, { nonEmpty: true });
      // The runtime trusts nothing in a bundle: a file must stay inside the bundle folder.
      if (file !== undefined && (file.startsWith('/') || file.split(/[\\/]/).includes('..'))) {
        c.problem(`files.${key}`, `must be a path inside the bundle folder, found "${file}"`);
      }
    }
  }

  const image = c.object(m.image, 'image');
  if (image !== undefined) {
    c.integer(image.inputSize, 'image.inputSize', { min: 1, max: 4096 });
    for (const key of ['mean', 'std'] as const) {
      const values = c.array(image[key], `image.${key}`, { length: 3 });
      values?.forEach((v, i) =>
        c.number(v, `image.${key}[${i}]`, key === 'std' ? { min: 0, exclusiveMin: true } : {}),
      );
    }
    c.integer(image.outputSize, 'image.outputSize', { min: 1, max: 8192 });
    c.integer(image.maxInputPixels, 'image.maxInputPixels', { min: 1 });
  }

  const llm = c.object(m.llm, 'llm');
  let vocabSize: number | undefined;
  if (llm !== undefined) {
    c.integer(llm.layers, 'llm.layers', { min: 1 });
    c.integer(llm.kvHeads, 'llm.kvHeads', { min: 1 });
    c.integer(llm.headDim, 'llm.headDim', { min: 1 });
    vocabSize = c.integer(llm.vocabSize, 'llm.vocabSize', { min: 1 });
    c.integer(llm.maxPositions, 'llm.maxPositions', { min: 2 });
    const rope = c.object(llm.rope, 'llm.rope');
    if (rope !== undefined) c.number(rope.theta, 'llm.rope.theta', { min: 0, exclusiveMin: true });
    c.dtype(llm.dtype, 'llm.dtype');
    if (llm.positions !== undefined && !POSITION_SCHEMES.includes(llm.positions as PositionScheme)) {
      c.problem('llm.positions', `must be one of ${POSITION_SCHEMES.map((p) => `"${p}"`).join(', ')}, found ${describe(llm.positions)}`);
    }
  }

  const tokens = c.object(m.tokens, 'tokens');
  const tokenId = (value: unknown, path: string) =>
    c.integer(value, path, { min: 0, max: vocabSize === undefined ? Number.MAX_SAFE_INTEGER : vocabSize - 1 });
  let imageCount: number | undefined;
  if (tokens !== undefined) {
    tokenId(tokens.imStart, 'tokens.imStart');
    tokenId(tokens.imEnd, 'tokens.imEnd');
    const scaleTokens = c.array(tokens.scaleTokens, 'tokens.scaleTokens');
    scaleTokens?.forEach((id, i) => tokenId(id, `tokens.scaleTokens[${i}]`));
    const imageBase = tokenId(tokens.imageBase, 'tokens.imageBase');
    imageCount = c.integer(tokens.imageCount, 'tokens.imageCount', { min: 1 });
    if (imageBase !== undefined && imageCount !== undefined && vocabSize !== undefined) {
      if (imageBase + imageCount > vocabSize) {
        c.problem(
          'tokens.imageCount',
          `image ids ${imageBase}…${imageBase + imageCount - 1} do not fit llm.vocabSize ${vocabSize}`,
        );
      }
    }
    const eos = c.array(tokens.eos, 'tokens.eos');
    if (eos !== undefined && eos.length === 0) c.problem('tokens.eos', 'must list at least one id');
    eos?.forEach((id, i) => tokenId(id, `tokens.eos[${i}]`));
    tokenId(tokens.pad, 'tokens.pad');
  }

  const scales = c.array(m.scales, 'scales');
  const scaleNumbers: number[] = [];
  if (scales !== undefined) {
    if (scales.length === 0) c.problem('scales', 'must list at least one scale');
    scales.forEach((entry, i) => {
      const s = c.object(entry, `scales[${i}]`);
      if (s === undefined) return;
      const scale = c.integer(s.scale, `scales[${i}].scale`, { min: 1 });
      const grid = c.integer(s.grid, `scales[${i}].grid`, { min: 1 });
      const count = c.integer(s.tokens, `scales[${i}].tokens`, { min: 1 });
      if (grid !== undefined && count !== undefined && grid * grid !== count) {
        c.problem(`scales[${i}].tokens`, `must be grid² = ${grid * grid}, found ${count}`);
      }
      if (scale !== undefined) {
        if (scaleNumbers.includes(scale)) c.problem(`scales[${i}].scale`, `repeats scale ${scale}`);
        scaleNumbers.push(scale);
      }
    });
    if (tokens !== undefined && Array.isArray(tokens.scaleTokens)) {
      const maxScale = Math.max(0, ...scaleNumbers);
      if (tokens.scaleTokens.length < maxScale) {
        c.problem('tokens.scaleTokens', `must give an <S{k}> id for every scale up to ${maxScale}, found ${tokens.scaleTokens.length}`);
      }
    }
  }
  const defaultScale = c.integer(m.defaultScale, 'defaultScale', { min: 1 });
  if (defaultScale !== undefined && scales !== undefined && !scaleNumbers.includes(defaultScale)) {
    c.problem('defaultScale', `must be one of the scales (${scaleNumbers.join(', ')}), found ${defaultScale}`);
  }

  if (m.editing !== undefined) {
    const editing = c.object(m.editing, 'editing');
    if (editing?.scale !== undefined) {
      const scale = c.integer(editing.scale, 'editing.scale', { min: 1 });
      if (scale !== undefined && scales !== undefined && !scaleNumbers.includes(scale)) {
        c.problem('editing.scale', `must be one of the scales (${scaleNumbers.join(', ')}), found ${scale}`);
      }
    }
  }

  if (m.selfCheck !== undefined) {
    const check = c.object(m.selfCheck, 'selfCheck');
    if (check !== undefined) {
      for (const field of ['judge', 'question'] as const) {
        if (typeof check[field] !== 'string' || check[field] === '') c.problem(`selfCheck.${field}`, 'must be a non-empty string');
      }
      c.integer(check.candidates, 'selfCheck.candidates', { min: 0, max: 64 });
      c.number(check.temperature, 'selfCheck.temperature', { min: 0 });
    }
  }

  if (m.understanding !== undefined) {
    const understanding = c.object(m.understanding, 'understanding');
    if (understanding?.scale !== undefined) {
      const scale = c.integer(understanding.scale, 'understanding.scale', { min: 1 });
      if (scale !== undefined && scales !== undefined && !scaleNumbers.includes(scale)) {
        c.problem('understanding.scale', `must be one of the scales (${scaleNumbers.join(', ')}), found ${scale}`);
      }
    }
    const viewScales =
      understanding?.viewScales === undefined ? undefined : c.array(understanding.viewScales, 'understanding.viewScales');
    viewScales?.forEach((value, i) => {
      const scale = c.integer(value, `understanding.viewScales[${i}]`, { min: 1 });
      if (scale === undefined || scales === undefined) return;
      if (!scaleNumbers.includes(scale)) {
        c.problem(`understanding.viewScales[${i}]`, `must be one of the scales (${scaleNumbers.join(', ')}), found ${scale}`);
      } else if (viewScales.indexOf(value) !== i) {
        c.problem(`understanding.viewScales[${i}]`, `repeats scale ${scale}`);
      }
    });
  }

  const taTok = c.object(m.taTok, 'taTok');
  if (taTok !== undefined) {
    const size = c.integer(taTok.codebookSize, 'taTok.codebookSize', { min: 1 });
    if (size !== undefined && imageCount !== undefined && size !== imageCount) {
      c.problem('taTok.codebookSize', `must equal tokens.imageCount (${imageCount}), found ${size}`);
    }
    c.dtype(taTok.dtype, 'taTok.dtype');
  }

  const vq = c.object(m.vq, 'vq');
  let vqGrid: number | undefined;
  if (vq !== undefined) {
    vqGrid = c.integer(vq.grid, 'vq.grid', { min: 1 });
    c.integer(vq.codebookSize, 'vq.codebookSize', { min: 1 });
    const out = c.integer(vq.outputSize, 'vq.outputSize', { min: 1 });
    if (out !== undefined && image !== undefined && typeof image.outputSize === 'number' && out !== image.outputSize) {
      c.problem('vq.outputSize', `must equal image.outputSize (${image.outputSize}), found ${out}`);
    }
    c.dtype(vq.dtype, 'vq.dtype');
  }

  const ar = c.object(m.arDTok, 'arDTok');
  if (ar !== undefined) {
    c.integer(ar.layers, 'arDTok.layers', { min: 1 });
    c.integer(ar.kvHeads, 'arDTok.kvHeads', { min: 1 });
    c.integer(ar.headDim, 'arDTok.headDim', { min: 1 });
    const size = c.integer(ar.codebookSize, 'arDTok.codebookSize', { min: 1 });
    if (size !== undefined && vq !== undefined && typeof vq.codebookSize === 'number' && size !== vq.codebookSize) {
      c.problem('arDTok.codebookSize', `must equal vq.codebookSize (${vq.codebookSize}), found ${size}`);
    }
    c.integer(ar.condDim, 'arDTok.condDim', { min: 1 });
    const codes = c.integer(ar.codes, 'arDTok.codes', { min: 1 });
    if (codes !== undefined && vqGrid !== undefined && codes !== vqGrid * vqGrid) {
      c.problem('arDTok.codes', `must equal vq.grid² (${vqGrid * vqGrid}), found ${codes}`);
    }
    const maxPositions = c.integer(ar.maxPositions, 'arDTok.maxPositions', { min: 1 });
    if (maxPositions !== undefined && codes !== undefined && Array.isArray(scales)) {
      const longest = Math.max(0, ...scales.map((s) => Number((s as { tokens?: unknown })?.tokens) || 0));
      if (longest + codes > maxPositions) {
        c.problem('arDTok.maxPositions', `must hold the longest condition plus the codes (${longest} + ${codes}), found ${maxPositions}`);
      }
    }
    c.dtype(ar.dtype, 'arDTok.dtype');
  }

  const chat = c.object(m.chat, 'chat');
  if (chat !== undefined) {
    if (chat.system !== null) c.string(chat.system, 'chat.system');
    c.placeholders(chat.turnStart, 'chat.turnStart', ['role'], ['role']);
    c.placeholders(chat.turnEnd, 'chat.turnEnd', [], []);
  }

  const templates = c.object(m.templates, 'templates');
  if (templates !== undefined) {
    c.placeholders(templates.image, 'templates.image', ['tokens'], ['tokens', 'k']);
    c.placeholders(templates.understand, 'templates.understand', ['image', 'prompt'], ['image', 'prompt']);
    c.placeholders(templates.generate, 'templates.generate', ['prompt'], ['prompt']);
    c.placeholders(templates.edit, 'templates.edit', ['image', 'prompt'], ['image', 'prompt']);
    c.placeholders(templates.imageAnswerPrefix, 'templates.imageAnswerPrefix', [], ['k']);
    if (templates.unconditionalPrompt !== undefined) {
      c.placeholders(templates.unconditionalPrompt, 'templates.unconditionalPrompt', [], []);
    }
  }

  const sampling = c.object(m.sampling, 'sampling');
  if (sampling !== undefined) {
    const common = (value: unknown, path: string) => {
      const s = c.object(value, path);
      if (s === undefined) return undefined;
      c.number(s.temperature, `${path}.temperature`, { min: 0 });
      c.integer(s.topK, `${path}.topK`, { min: 0 });
      c.number(s.topP, `${path}.topP`, { min: 0, max: 1, exclusiveMin: true });
      return s;
    };
    const text = common(sampling.text, 'sampling.text');
    if (text !== undefined) {
      c.number(text.repetitionPenalty, 'sampling.text.repetitionPenalty', { min: 0, exclusiveMin: true });
      c.integer(text.maxNewTokens, 'sampling.text.maxNewTokens', { min: 1 });
    }
    const image = common(sampling.image, 'sampling.image');
    // Optional: a bundle from before guided image tokens has none, which reads as 1 (unguided).
    if (image?.cfgScale !== undefined) c.number(image.cfgScale, 'sampling.image.cfgScale', { min: 0 });
    const detok = common(sampling.detok, 'sampling.detok');
    if (detok !== undefined) c.number(detok.cfgScale, 'sampling.detok.cfgScale', { min: 0 });
  }

  if (c.problems.length > 0) {
    throw new BundleError(`${source} is invalid:\n  ${c.problems.join('\n  ')}`);
  }
  const manifest = m as unknown as Manifest;
  // Absent optional fields read as their defaults, on a copy: the caller's JSON stays as it was.
  const imageSampling = { ...manifest.sampling.image, cfgScale: manifest.sampling.image.cfgScale ?? 1 };
  return { ...manifest, sampling: { ...manifest.sampling, image: imageSampling } };
}

/** How understanding reads an image given as pixels, absent fields read as their defaults (a fresh copy). */
export function understandingOf(manifest: Manifest): { scale: number; viewScales: number[] } {
  return {
    scale: manifest.understanding?.scale ?? manifest.defaultScale,
    viewScales: [...(manifest.understanding?.viewScales ?? [])],
  };
}

export interface SelfCheck {
  judge: string;
  question: string;
  candidates: number;
  temperature: number;
}

/** How an edit reads an image given as pixels, absent fields read as their defaults (a fresh copy). */
export function editingOf(manifest: Manifest): { scale: number } {
  return { scale: manifest.editing?.scale ?? manifest.defaultScale };
}

/** The scale entry for `scale`, or undefined when the bundle lacks it. */
export function findScale(manifest: Manifest, scale: number): ScaleInfo | undefined {
  return manifest.scales.find((s) => s.scale === scale);
}
