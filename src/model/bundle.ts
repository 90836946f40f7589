import { access, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BundleError } from './errors.ts';
import { GRAPH_KEYS, type GraphKey, type Manifest, parseManifest } from './manifest.ts';
import { Graph, type PortInfo, type SessionConfig } from './onnx-backend.ts';
import { TextTokenizer } from './tokenizer.ts';

/** Loading progress: one event per file as it is read or opened. */
export interface LoadProgress {
  /** The manifest key of the file (`manifest`, `tokenizer` or a graph key). */
  file: 'manifest' | 'tokenizer' | GraphKey;
  done: number;
  total: number;
}

/** A validated bundle folder with its graphs open. */
export interface Bundle {
  readonly dir: string;
  readonly manifest: Manifest;
  readonly tokenizer: TextTokenizer;
  readonly graphs: Readonly<Record<GraphKey, Graph>>;
  dispose(): Promise<void>;
}

export interface LoadBundleOptions extends SessionConfig {
  onProgress?: (event: LoadProgress) => void;
}

/**
 * Opens a bundle folder: validates `manifest.json` (every bad field by path), checks that the files exist, loads
 * the tokenizer and checks the manifest's token ids against its added tokens, opens the five graphs and checks each
 * graph's ports against the contract of docs/bundle-format.md. Any problem is a {@link BundleError} naming the
 * file and the field or port; graphs already opened are released first.
 */
export async function loadBundle(bundleDir: string, options: LoadBundleOptions = {}): Promise<Bundle> {
  const dir = resolve(bundleDir);
  const total = 2 + GRAPH_KEYS.length;
  let done = 0;
  const progress = (file: LoadProgress['file']) => options.onProgress?.({ file, done: ++done, total });

  const manifestPath = join(dir, 'manifest.json');
  let raw: string;
  try {
    raw = await readFile(manifestPath, 'utf8');
  } catch (error) {
    throw new BundleError(`${dir} is not a model bundle: cannot read manifest.json (${(error as NodeJS.ErrnoException).code ?? error})`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (error) {
    throw new BundleError(`${manifestPath} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  const manifest = parseManifest(json, manifestPath);
  progress('manifest');

  const missing: string[] = [];
  for (const key of [...GRAPH_KEYS, 'tokenizer'] as const) {
    try {
      await access(join(dir, manifest.files[key]));
    } catch {
      missing.push(`files.${key} = "${manifest.files[key]}"`);
    }
  }
  if (missing.length > 0) throw new BundleError(`${dir}: missing file(s) named in manifest.json: ${missing.join(', ')}`);

  const { tokens } = manifest;
  const imageEnd = tokens.imageBase + tokens.imageCount;
  const specialIds = new Set([tokens.imStart, tokens.imEnd, ...tokens.scaleTokens, ...tokens.eos, tokens.pad]);
  const tokenizerPath = join(dir, manifest.files.tokenizer);
  const tokenizer = await TextTokenizer.fromFile(
    tokenizerPath,
    (id) => (id >= tokens.imageBase && id < imageEnd) || specialIds.has(id),
  );
  checkTokenizer(manifest, tokenizer, tokenizerPath);
  progress('tokenizer');

  const graphs: Partial<Record<GraphKey, Graph>> = {};
  const release = () => Promise.all(Object.values(graphs).map((g) => g.dispose()));
  try {
    for (const key of GRAPH_KEYS) {
      const path = join(dir, manifest.files[key]);
      const graph = await Graph.open(path, options, `${key} (${manifest.files[key]})`);
      graphs[key] = graph;
      checkGraph(key, graph, manifest, path);
      progress(key);
    }
  } catch (error) {
    await release();
    throw error;
  }
  return {
    dir,
    manifest,
    tokenizer,
    graphs: graphs as Record<GraphKey, Graph>,
    dispose: async () => {
      await release();
    },
  };
}

/** Checks the manifest's token ids against the tokenizer's added tokens. */
export function checkTokenizer(manifest: Manifest, tokenizer: TextTokenizer, path: string): void {
  const added = tokenizer.addedTokens();
  const problems: string[] = [];
  const expect = (field: string, id: number, content: string) => {
    const found = added.get(id);
    if (found?.content !== content) {
      problems.push(`${field} = ${id} must be the added token ${content}, found ${found === undefined ? 'no added token' : found.content}`);
    }
  };
  const { tokens } = manifest;
  expect('tokens.imStart', tokens.imStart, '<im_start>');
  expect('tokens.imEnd', tokens.imEnd, '<im_end>');
  tokens.scaleTokens.forEach((id, i) => expect(`tokens.scaleTokens[${i}]`, id, `<S${i}>`));
  expect('tokens.imageBase', tokens.imageBase, '<I0>');
  const last = tokens.imageCount - 1;
  expect(`tokens.imageBase + ${last}`, tokens.imageBase + last, `<I${last}>`);
  for (const content of ['<|im_start|>', '<|im_end|>']) {
    if (![...added.values()].some((t) => t.content === content)) problems.push(`the tokenizer has no added token ${content}`);
  }
  tokens.eos.forEach((id, i) => {
    if (tokenizer.decodeRaw(id) === undefined) problems.push(`tokens.eos[${i}] = ${id} is not a token of the tokenizer`);
  });
  const largest = Math.max(...added.keys());
  if (largest >= manifest.llm.vocabSize) {
    problems.push(`the tokenizer's added token ${largest} is outside llm.vocabSize ${manifest.llm.vocabSize}`);
  }
  if (problems.length > 0) throw new BundleError(`${path} does not match manifest.json:\n  ${problems.join('\n  ')}`);
}

interface PortSpec {
  name: string;
  /** 'int64' or 'float' (float32 or float16 as the manifest's dtype says). */
  type: 'int64' | 'float';
  rank: number;
  /** Axis sizes the manifest fixes (undefined: dynamic or not checked). */
  dims?: (number | undefined)[];
}

function contract(key: GraphKey, m: Manifest): { inputs: PortSpec[]; outputs: PortSpec[] } {
  const cache = (prefix: string, layers: number, heads: number, dim: number): PortSpec[] =>
    Array.from({ length: layers }, (_, i) =>
      (['key', 'value'] as const).map((kind) => ({
        name: `${prefix}.${i}.${kind}`,
        type: 'float' as const,
        rank: 4,
        dims: [undefined, heads, undefined, dim],
      })),
    ).flat();
  const decoderInputs: PortSpec[] = [
    { name: 'input_ids', type: 'int64', rank: 2 },
    { name: 'attention_mask', type: 'int64', rank: 2 },
    { name: 'position_ids', type: 'int64', rank: 2 },
  ];
  switch (key) {
    case 'taTokEncoder':
      return {
        inputs: [
          { name: 'pixels', type: 'float', rank: 4, dims: [undefined, 3, m.image.inputSize, m.image.inputSize] },
          { name: 'scale', type: 'int64', rank: 1 },
        ],
        outputs: [{ name: 'ids', type: 'int64', rank: 2 }],
      };
    case 'taTokDecoder':
      return {
        inputs: [{ name: 'ids', type: 'int64', rank: 2 }],
        outputs: [{ name: 'features', type: 'float', rank: 3, dims: [undefined, undefined, m.arDTok.condDim] }],
      };
    case 'llm':
      return {
        inputs: [...decoderInputs, ...cache('past_key_values', m.llm.layers, m.llm.kvHeads, m.llm.headDim)],
        outputs: [
          { name: 'logits', type: 'float', rank: 2, dims: [undefined, m.llm.vocabSize] },
          ...cache('present', m.llm.layers, m.llm.kvHeads, m.llm.headDim),
        ],
      };
    case 'arDTok':
      return {
        inputs: [
          ...decoderInputs,
          { name: 'cond', type: 'float', rank: 3, dims: [undefined, undefined, m.arDTok.condDim] },
          ...cache('past_key_values', m.arDTok.layers, m.arDTok.kvHeads, m.arDTok.headDim),
        ],
        outputs: [
          { name: 'logits', type: 'float', rank: 2, dims: [undefined, m.arDTok.codebookSize] },
          ...cache('present', m.arDTok.layers, m.arDTok.kvHeads, m.arDTok.headDim),
        ],
      };
    case 'vqDecoder':
      return {
        inputs: [{ name: 'codes', type: 'int64', rank: 2, dims: [undefined, m.vq.grid * m.vq.grid] }],
        outputs: [{ name: 'pixels', type: 'float', rank: 4, dims: [undefined, 3, m.vq.outputSize, m.vq.outputSize] }],
      };
  }
}

/** The manifest's dtype for a graph's float ports. */
export function graphDtype(key: GraphKey, m: Manifest): 'float32' | 'float16' {
  switch (key) {
    case 'taTokEncoder':
    case 'taTokDecoder':
      return m.taTok.dtype;
    case 'llm':
      return m.llm.dtype;
    case 'arDTok':
      return m.arDTok.dtype;
    case 'vqDecoder':
      return m.vq.dtype;
  }
}

/** Checks one graph's input and output ports (names, element types, ranks, fixed sizes) against the contract. */
export function checkGraph(key: GraphKey, graph: { inputs: readonly PortInfo[]; outputs: readonly PortInfo[] }, m: Manifest, path: string): void {
  const spec = contract(key, m);
  const dtype = graphDtype(key, m);
  const problems: string[] = [];
  const check = (side: 'input' | 'output', specs: PortSpec[], ports: readonly PortInfo[]) => {
    const byName = new Map(ports.map((p) => [p.name, p]));
    for (const want of specs) {
      const port = byName.get(want.name);
      if (port === undefined) {
        problems.push(`missing ${side} "${want.name}"`);
        continue;
      }
      const type = want.type === 'int64' ? 'int64' : dtype;
      if (port.type !== undefined && port.type !== type) {
        problems.push(`${side} "${want.name}" is ${port.type}, the contract says ${type}${want.type === 'float' ? ` (manifest dtype ${dtype})` : ''}`);
      }
      if (port.shape !== undefined) {
        if (port.shape.length !== want.rank) {
          problems.push(`${side} "${want.name}" has rank ${port.shape.length} [${port.shape.join(', ')}], the contract says rank ${want.rank}`);
        } else {
          want.dims?.forEach((size, axis) => {
            const actual = port.shape?.[axis];
            if (size !== undefined && typeof actual === 'number' && actual !== size) {
              problems.push(`${side} "${want.name}" axis ${axis} is ${actual}, the manifest implies ${size}`);
            }
          });
        }
      }
    }
    if (side === 'input') {
      const known = new Set(specs.map((s) => s.name));
      for (const port of ports) if (!known.has(port.name)) problems.push(`unexpected input "${port.name}" (the runtime cannot feed it)`);
    }
  };
  check('input', spec.inputs, graph.inputs);
  check('output', spec.outputs, graph.outputs);
  if (problems.length > 0) {
    throw new BundleError(`${path} (${key}) breaks the graph contract:\n  ${problems.join('\n  ')}`);
  }
}
