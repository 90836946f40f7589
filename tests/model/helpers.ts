import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import type { Bundle } from '../../src/model/bundle.ts';
import { allocFloat, int64Tensor, rawFloatTensor, readFloat32, type Tensor } from '../../src/model/onnx-backend.ts';

export const TINY_BUNDLE = fileURLToPath(new URL('../fixtures/tiny-bundle/', import.meta.url));
export const GOLDEN_DIR = fileURLToPath(new URL('../fixtures/golden/', import.meta.url));

export async function readJson<T = any>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

export async function tinyManifest(): Promise<any> {
  return readJson(join(TINY_BUNDLE, 'manifest.json'));
}

/** A copy of the tiny bundle in a temporary folder, with its manifest changed by `edit`. */
export async function bundleCopy(edit: (manifest: any) => void = () => {}): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'dialect-bundle-'));
  await cp(TINY_BUNDLE, dir, { recursive: true });
  const manifest = await tinyManifest();
  edit(manifest);
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export function assertClose(actual: ArrayLike<number>, expected: readonly number[], tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs((actual[i] as number) - (expected[i] as number));
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  assert.ok(worst <= tolerance, `${what}: |Δ| = ${worst} at ${at} exceeds ${tolerance}`);
}

/** One float32 LLM prefill of a single row, straight through the bundle's graph: its last-position logits. */
export async function llmPrefill(bundle: Bundle, ids: number[]): Promise<Float32Array> {
  const { llm } = bundle.manifest;
  const feeds: Record<string, Tensor> = {
    input_ids: int64Tensor(ids, [1, ids.length]),
    attention_mask: int64Tensor(ids.map(() => 1), [1, ids.length]),
    position_ids: int64Tensor(ids.map((_, i) => i), [1, ids.length]),
  };
  for (let i = 0; i < llm.layers; i++) {
    for (const kind of ['key', 'value']) {
      feeds[`past_key_values.${i}.${kind}`] = rawFloatTensor('float32', allocFloat('float32', 0), [1, llm.kvHeads, 0, llm.headDim]);
    }
  }
  const { outputs } = await bundle.graphs.llm.run(feeds);
  return readFloat32(outputs.logits as Tensor);
}
