import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { BundleError } from '../../src/model/errors.ts';
import { editingOf, parseManifest, understandingOf } from '../../src/model/manifest.ts';
import { tinyManifest } from './helpers.ts';

let good: any;
before(async () => {
  good = await tinyManifest();
});

/** The message of the BundleError that parsing the edited manifest throws. */
function problems(edit: (m: any) => void): string {
  const manifest = structuredClone(good);
  edit(manifest);
  try {
    parseManifest(manifest, '/b/manifest.json');
  } catch (error) {
    assert.ok(error instanceof BundleError);
    assert.equal(error.code, 'BUNDLE_INVALID');
    return error.message;
  }
  assert.fail('the manifest was accepted');
}

describe('parseManifest', () => {
  it('accepts the tiny bundle manifest', () => {
    const m = parseManifest(good);
    assert.equal(m.tokens.imageBase, 308);
    assert.equal(m.scales.length, 3);
  });

  it('names the file and the exact path of each bad field, all at once', () => {
    const message = problems((m) => {
      m.tokens.eos[1] = 'x';
      m.image.std[2] = 0;
      delete m.llm.rope;
      m.format = 'dialect-bundle/2';
    });
    assert.match(message, /^\/b\/manifest\.json is invalid:/);
    assert.match(message, /tokens\.eos\[1\]: must be an integer, found string "x"/);
    assert.match(message, /image\.std\[2\]: must be > 0, found 0/);
    assert.match(message, /llm\.rope: must be an object, found nothing/);
    assert.match(message, /format: must be "dialect-bundle\/1", found string "dialect-bundle\/2"/);
  });

  it('checks ids against the vocabulary and cross-field rules', () => {
    assert.match(problems((m) => (m.tokens.imageCount = 100)), /tokens\.imageCount: image ids 308…407 do not fit llm\.vocabSize 372/);
    assert.match(problems((m) => (m.tokens.pad = 372)), /tokens\.pad: must be ≤ 371, found 372/);
    assert.match(problems((m) => (m.scales[1].tokens = 15)), /scales\[1\]\.tokens: must be grid² = 16, found 15/);
    assert.match(problems((m) => (m.defaultScale = 4)), /defaultScale: must be one of the scales \(1, 2, 3\), found 4/);
    assert.match(problems((m) => (m.arDTok.codes = 60)), /arDTok\.codes: must equal vq\.grid² \(64\), found 60/);
    assert.match(problems((m) => (m.taTok.codebookSize = 32)), /taTok\.codebookSize: must equal tokens\.imageCount \(64\)/);
    assert.match(problems((m) => (m.llm.dtype = 'bfloat16')), /llm\.dtype: must be "float32" or "float16"/);
    assert.match(problems((m) => (m.arDTok.maxPositions = 100)), /arDTok\.maxPositions: must hold the longest condition plus the codes \(81 \+ 64\)/);
  });

  it('checks templates and file paths', () => {
    assert.match(problems((m) => (m.templates.image = '<im_start>{k}<im_end>')), /templates\.image: must contain the placeholder \{tokens\}/);
    assert.match(problems((m) => (m.templates.generate = '{prompt} {colour}')), /templates\.generate: has the unknown placeholder \{colour\}/);
    assert.match(problems((m) => (m.chat.turnStart = '<|im_start|>\n')), /chat\.turnStart: must contain the placeholder \{role\}/);
    assert.match(problems((m) => (m.files.llm = '../llm.onnx')), /files\.llm: must be a path inside the bundle folder/);
  });

  it('checks sampling defaults', () => {
    assert.match(problems((m) => (m.sampling.text.topP = 0)), /sampling\.text\.topP: must be > 0, found 0/);
    assert.match(problems((m) => delete m.sampling.detok.cfgScale), /sampling\.detok\.cfgScale: must be a finite number, found nothing/);
    assert.match(problems((m) => (m.sampling.image.cfgScale = -1)), /sampling\.image\.cfgScale: must be ≥ 0, found -1/);
    assert.match(problems((m) => (m.templates.unconditionalPrompt = '{prompt}')), /templates\.unconditionalPrompt: has the unknown placeholder \{prompt\}/);
  });

  it('reads a bundle without prompt guidance as unguided, with the empty unconditional prompt', () => {
    assert.equal(good.sampling.image.cfgScale, undefined);
    const m = parseManifest(structuredClone(good));
    assert.equal(m.sampling.image.cfgScale, 1);
    assert.equal(m.templates.unconditionalPrompt, undefined, 'the runtime reads absent as ""');
  });

  it('reads a bundle without an understanding section at its default scale, with no other views', () => {
    assert.equal(good.understanding, undefined);
    assert.deepEqual(understandingOf(parseManifest(structuredClone(good))), { scale: 2, viewScales: [] });
    const m = structuredClone(good);
    m.understanding = { scale: 3, viewScales: [1] };
    assert.deepEqual(understandingOf(parseManifest(m)), { scale: 3, viewScales: [1] });
  });

  it('checks the understanding section against the scales', () => {
    assert.match(problems((m) => (m.understanding = { scale: 4 })), /understanding\.scale: must be one of the scales \(1, 2, 3\), found 4/);
    assert.match(problems((m) => (m.understanding = { viewScales: [1, 5] })), /understanding\.viewScales\[1\]: must be one of the scales/);
    assert.match(problems((m) => (m.understanding = { viewScales: [1, 1] })), /understanding\.viewScales\[1\]: repeats scale 1/);
    assert.match(problems((m) => (m.understanding = { viewScales: 3 })), /understanding\.viewScales: must be an array/);
    assert.match(problems((m) => (m.understanding = 'scale 3')), /understanding: must be an object/);
  });

  it('edits an upload at the default scale without an editing section, else at its scale', () => {
    assert.equal(good.editing, undefined);
    assert.deepEqual(editingOf(parseManifest(structuredClone(good))), { scale: 2 });
    const m = structuredClone(good);
    m.editing = { scale: 3 };
    assert.deepEqual(editingOf(parseManifest(m)), { scale: 3 });
  });

  it('checks the editing section against the scales', () => {
    assert.match(problems((m) => (m.editing = { scale: 4 })), /editing\.scale: must be one of the scales \(1, 2, 3\), found 4/);
    assert.match(problems((m) => (m.editing = { scale: 2.5 })), /editing\.scale: must be an integer/);
    assert.match(problems((m) => (m.editing = 3)), /editing: must be an object/);
  });

  it('checks the selfCheck section', () => {
    const m = structuredClone(good);
    m.selfCheck = { judge: 'shapes', question: 'Describe the image.', candidates: 8, temperature: 0.7 };
    assert.deepEqual(parseManifest(m).selfCheck, m.selfCheck);
    assert.match(problems((m) => (m.selfCheck = { judge: '', question: 'q', candidates: 1, temperature: 1 })), /selfCheck\.judge: must be a non-empty string/);
    assert.match(problems((m) => (m.selfCheck = { judge: 'j', question: 'q', candidates: 65, temperature: 1 })), /selfCheck\.candidates/);
    assert.match(problems((m) => (m.selfCheck = { judge: 'j', question: 'q', candidates: 1, temperature: -1 })), /selfCheck\.temperature/);
    assert.match(problems((m) => (m.selfCheck = true)), /selfCheck: must be an object/);
  });

  it('rejects a non-object', () => {
    assert.throws(() => parseManifest([]), /\(root\): must be an object, found an array/);
  });
});
