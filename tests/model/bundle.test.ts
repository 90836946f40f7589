import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { checkGraph, type LoadProgress, loadBundle } from '../../src/model/bundle.ts';
import { BundleError, ProviderUnavailableError } from '../../src/model/errors.ts';
import { parseManifest } from '../../src/model/manifest.ts';
import { bundleCopy, TINY_BUNDLE, tinyManifest } from './helpers.ts';

async function loadError(edit: (m: any) => void, change?: (dir: string) => Promise<void>): Promise<BundleError> {
  const copy = await bundleCopy(edit);
  try {
    await change?.(copy.dir);
    await loadBundle(copy.dir, { intraOpThreads: 1 });
  } catch (error) {
    assert.ok(error instanceof BundleError, String(error));
    return error;
  } finally {
    await copy.cleanup();
  }
  assert.fail('the bundle loaded');
}

describe('loadBundle', () => {
  it('opens the tiny bundle and reports progress per file', async () => {
    const events: LoadProgress[] = [];
    const bundle = await loadBundle(TINY_BUNDLE, { intraOpThreads: 1, onProgress: (e) => events.push(e) });
    try {
      assert.equal(bundle.manifest.name, 'tiny-random');
      assert.deepEqual(events.map((e) => e.file), ['manifest', 'tokenizer', 'taTokEncoder', 'taTokDecoder', 'llm', 'arDTok', 'vqDecoder']);
      assert.deepEqual(events.at(-1), { file: 'vqDecoder', done: 7, total: 7 });
      assert.ok(bundle.graphs.llm.inputs.some((p) => p.name === 'past_key_values.1.value'));
    } finally {
      await bundle.dispose();
    }
  });

  it('says when the folder is not a bundle', async () => {
    await assert.rejects(loadBundle('/nonexistent/bundle'), /\/nonexistent\/bundle is not a model bundle: cannot read manifest\.json \(ENOENT\)/);
  });

  it('names missing files by manifest key', async () => {
    const error = await loadError(() => {}, (dir) => rm(join(dir, 'vq_decoder.onnx')));
    assert.match(error.message, /missing file\(s\) named in manifest\.json: files\.vqDecoder = "vq_decoder\.onnx"/);
  });

  it('reports invalid JSON with the file path', async () => {
    const error = await loadError(() => {}, (dir) => writeFile(join(dir, 'manifest.json'), '{"format": '));
    assert.match(error.message, /manifest\.json is not valid JSON/);
  });

  it('checks token ids against the tokenizer', async () => {
    const error = await loadError((m) => {
      m.tokens.imStart = 305;
      m.tokens.scaleTokens = [305, 307, 306];
    });
    assert.match(error.message, /tokenizer\.json does not match manifest\.json/);
    assert.match(error.message, /tokens\.imStart = 305 must be the added token <im_start>, found <S0>/);
    assert.match(error.message, /tokens\.scaleTokens\[1\] = 307 must be the added token <S1>, found <S2>/);
  });

  it('checks a real graph against the contract of its slot', async () => {
    const error = await loadError((m) => (m.files.llm = 'ar_dtok.onnx'));
    assert.match(error.message, /ar_dtok\.onnx \(llm\) breaks the graph contract/);
    assert.match(error.message, /input "past_key_values\.0\.key" axis 1 is 4, the manifest implies 2/);
    assert.match(error.message, /output "logits" axis 1 is 64, the manifest implies 372/);
    assert.match(error.message, /unexpected input "cond"/);
  });

  it('checks a graph against the manifest dtype', async () => {
    const error = await loadError((m) => (m.vq.dtype = 'float16'));
    assert.match(error.message, /output "pixels" is float32, the contract says float16 \(manifest dtype float16\)/);
  });

  it('refuses a provider this build lacks, saying what to install', async () => {
    await assert.rejects(
      loadBundle(TINY_BUNDLE, { provider: 'rocm' as never }),
      (e: unknown) => e instanceof ProviderUnavailableError && e.code === 'PROVIDER_UNAVAILABLE' && /not in this onnxruntime-node build/.test(e.message),
    );
  });
});

describe('checkGraph', () => {
  it('names missing ports, wrong types and ranks', async () => {
    const m = parseManifest(await tinyManifest());
    const graph = {
      inputs: [
        { name: 'codes', type: 'int32', shape: ['b', 64] },
      ],
      outputs: [{ name: 'pixels', type: 'float32', shape: ['b', 3, 64] }],
    };
    assert.throws(() => checkGraph('vqDecoder', graph, m, 'vq.onnx'), (e: unknown) => {
      assert.ok(e instanceof BundleError);
      assert.match(e.message, /input "codes" is int32, the contract says int64/);
      assert.match(e.message, /output "pixels" has rank 3 \[b, 3, 64\], the contract says rank 4/);
      return true;
    });
    assert.throws(() => checkGraph('taTokDecoder', { inputs: [], outputs: [] }, m, 'd.onnx'), /missing input "ids"[\s\S]*missing output "features"/);
  });
});
