// Checks an exported bundle against golden.json with onnxruntime-node and @huggingface/tokenizers:
// tokenizer ids, TA-Tok encoder ids (scales 1/2/3), decoder features, LLM prefill logits (batch 1 and batch 2 with
// left padding), greedy text / image decoding with the KV cache, AR-DTok with CFG, VQ decoder pixels.
//   node training/check_bundle.mjs [bundleDir] [goldenDir] [extraTokenizerCases.json]
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
const require = createRequire(path.resolve('node_modules') + '/');
const ort = require('onnxruntime-node');
const sharp = require('sharp');
const { Tokenizer } = await import(path.resolve('node_modules/@huggingface/tokenizers/dist/tokenizers.mjs'));

const bundle = process.argv[2] ?? 'tests/fixtures/tiny-bundle';
const goldenDir = process.argv[3] ?? 'tests/fixtures/golden';
const extra = process.argv[4];
const m = JSON.parse(fs.readFileSync(path.join(bundle, 'manifest.json'), 'utf8'));
const g = JSON.parse(fs.readFileSync(path.join(goldenDir, 'golden.json'), 'utf8'));
let failures = 0;
const ok = (cond, msg) => { if (!cond) { failures++; console.log('FAIL', msg); } else console.log('ok  ', msg); };
const eqArr = (a, b) => a.length === b.length && a.every((x, i) => Number(x) === Number(b[i]));
const maxDiff = (a, b) => { let d = 0; for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i])); return a.length === b.length ? d : Infinity; };
const i64 = (arr, dims) => new ort.Tensor('int64', BigInt64Array.from(arr.map(BigInt)), dims);
const f32 = (arr, dims) => new ort.Tensor('float32', Float32Array.from(arr), dims);
const argmax = (a, lo = 0, hi = a.length) => { let b = lo; for (let i = lo; i < hi; i++) if (a[i] > a[b]) b = i; return b; };

// ---------------------------------------------------------------- tokenizer
const tj = JSON.parse(fs.readFileSync(path.join(bundle, m.files.tokenizer), 'utf8'));
const tok = new Tokenizer(tj, {});
const enc = (s) => tok.encode(s, { add_special_tokens: false }).ids;
for (const c of g.tokenizer) ok(eqArr(enc(c.text), c.ids), `tokenizer ${JSON.stringify(c.text).slice(0, 50)}`);
if (extra) {
  const cases = JSON.parse(fs.readFileSync(extra, 'utf8'));
  let bad = 0;
  for (const c of cases) if (!eqArr(enc(c.text), c.ids)) { bad++; if (bad < 5) console.log('  mismatch', JSON.stringify(c.text), enc(c.text), c.ids); }
  ok(bad === 0, `tokenizer fuzz ${cases.length - bad}/${cases.length}`);
}
for (const [k, v] of Object.entries({ imStart: '<im_start>', imEnd: '<im_end>', imageBase: '<I0>' }))
  ok(eqArr(enc(v), [m.tokens[k]]), `manifest tokens.${k} = ${v}`);

// ---------------------------------------------------------------- sessions
const sess = {};
for (const k of ['taTokEncoder', 'taTokDecoder', 'llm', 'arDTok', 'vqDecoder'])
  sess[k] = await ort.InferenceSession.create(path.join(bundle, m.files[k]));
for (const [k, s] of Object.entries(sess)) console.log('     ', k, 'in:', s.inputNames.join(','), 'out:', s.outputNames.join(','));

// ---------------------------------------------------------------- encoder / decoder
async function pixelsOf(file) {
  const { data, info } = await sharp(path.join(goldenDir, file)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const S = info.width, out = new Float32Array(3 * S * S);
  for (let c = 0; c < 3; c++) for (let i = 0; i < S * S; i++)
    out[c * S * S + i] = (data[i * 3 + c] / 255 - m.image.mean[c]) / m.image.std[c];
  return new ort.Tensor('float32', out, [1, 3, S, S]);
}
for (const c of g.encoder) {
  const r = await sess.taTokEncoder.run({ pixels: await pixelsOf(c.image), scale: i64([c.scale], [1]) });
  ok(eqArr(Array.from(r.ids.data), c.ids) && r.ids.dims[1] === c.ids.length, `encoder ${c.image} scale ${c.scale} (${c.ids.length} ids)`);
}
{ // batch 2 through the encoder
  const a = await pixelsOf('image_a.png'), b = await pixelsOf('image_b.png');
  const both = new ort.Tensor('float32', Float32Array.from([...a.data, ...b.data]), [2, 3, a.dims[2], a.dims[3]]);
  const r = await sess.taTokEncoder.run({ pixels: both, scale: i64([2], [1]) });
  const want = [...g.encoder.find(c => c.image === 'image_a.png' && c.scale === 2).ids, ...g.encoder.find(c => c.image === 'image_b.png' && c.scale === 2).ids];
  ok(eqArr(Array.from(r.ids.data), want), 'encoder batch 2 scale 2');
}
const sum = (a) => a.reduce((x, y) => x + y, 0);
for (const c of g.taTokDecoder) {
  const r = await sess.taTokDecoder.run({ ids: i64(c.ids, [1, c.ids.length]) });
  const f = Array.from(r.features.data);
  const d = c.features ? maxDiff(f, c.features) : maxDiff(f.slice(0, c.summary.first.length), c.summary.first);
  ok(d < 1e-4 && Math.abs(sum(f) - c.summary.sum) < 1e-2 && eqArr(r.features.dims, c.summary.shape), `taTokDecoder ${c.from} maxdiff ${d.toExponential(2)}`);
}

// ---------------------------------------------------------------- decoders with a cache
function emptyPast(cfg, B) {
  const o = {};
  for (let i = 0; i < cfg.layers; i++) for (const kv of ['key', 'value'])
    o[`past_key_values.${i}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [B, cfg.kvHeads, 0, cfg.headDim]);
  return o;
}
function presentsToPast(r, cfg) {
  const o = {};
  for (let i = 0; i < cfg.layers; i++) for (const kv of ['key', 'value']) o[`past_key_values.${i}.${kv}`] = r[`present.${i}.${kv}`];
  return o;
}
function leftPad(prompts) {
  const L = Math.max(...prompts.map(p => p.length)), ids = [], mask = [], pos = [];
  for (const p of prompts) {
    const n = L - p.length; let c = 0;
    for (let j = 0; j < L; j++) {
      const real = j >= n; ids.push(real ? p[j - n] : m.tokens.pad); mask.push(real ? 1 : 0);
      if (real) c++; pos.push(Math.max(c - 1, 0));
    }
  }
  return { ids, mask, pos, L };
}
async function llmGreedy(prompts, mode, maxNew, stopOnEos) {
  const B = prompts.length, { ids, mask, pos, L } = leftPad(prompts);
  let r = await sess.llm.run({ input_ids: i64(ids, [B, L]), attention_mask: i64(mask, [B, L]), position_ids: i64(pos, [B, L]), ...emptyPast(m.llm, B) });
  const prefill = Array.from(r.logits.data);
  let maskArr = mask.slice(), total = L, last = prompts.map((_, b) => pos[b * L + L - 1]);
  const out = prompts.map(() => []), done = prompts.map(() => false);
  for (let step = 0; step < maxNew; step++) {
    const V = r.logits.dims[1], lg = r.logits.data, nxt = [];
    for (let b = 0; b < B; b++) {
      const row = lg.subarray(b * V, (b + 1) * V);
      const t = mode === 'image' ? argmax(row, m.tokens.imageBase, m.tokens.imageBase + m.tokens.imageCount) : argmax(row);
      nxt.push(t);
      if (!done[b]) { if (mode === 'text' && stopOnEos && m.tokens.eos.includes(t)) done[b] = true; else out[b].push(t); }
    }
    if (done.every(Boolean) || step === maxNew - 1) break;
    const nm = []; for (let b = 0; b < B; b++) nm.push(...maskArr.slice(b * total, (b + 1) * total), 1);
    maskArr = nm; total += 1; last = last.map(x => x + 1);
    r = await sess.llm.run({ input_ids: i64(nxt, [B, 1]), attention_mask: i64(maskArr, [B, total]), position_ids: i64(last, [B, 1]), ...presentsToPast(r, m.llm) });
  }
  return { prefill, out };
}

for (const c of g.llmPrefill) {
  const { prefill } = await llmGreedy([c.promptIds], 'text', 1, false);
  ok(maxDiff(prefill, c.logits) < 1e-4, `llm prefill ${c.name} maxdiff ${maxDiff(prefill, c.logits).toExponential(2)}`);
}
{
  const u = g.understand;
  const a = await llmGreedy([u.promptIds], 'text', u.maxNewTokens, true);
  ok(eqArr(a.out[0], u.answerIds), `understand greedy answer ${a.out[0].join(',')}`);
  const text = tok.decode(u.answerIds, { skip_special_tokens: false });
  ok(text === u.answerText, `answer decodes to ${JSON.stringify(text)} (python: ${JSON.stringify(u.answerText)})`);
  const b = await llmGreedy([u.promptIds], 'text', u.maxNewTokens, false);
  ok(eqArr(b.out[0], u.answerIdsIgnoringEos), 'understand greedy ignoring eos');
}
{
  const h = g.history;
  const a = await llmGreedy([h.promptIds], 'text', h.maxNewTokens, true);
  ok(maxDiff(a.prefill, h.prefillLogits) < 1e-4 && eqArr(a.out[0], h.answerIds), `history prefill + greedy ${a.out[0].join(',')}`);
}
{
  const c = g.batchLeftPad;
  const a = await llmGreedy(c.promptIds, 'text', c.maxNewTokens, false);
  const d = maxDiff(a.prefill, c.prefillLogits.flat());
  ok(d < 1e-4, `batch 2 left-pad prefill maxdiff ${d.toExponential(2)}`);
  ok(eqArr(a.out.flat(), c.answerIds.flat()), 'batch 2 left-pad greedy ids');
}
// ---------------------------------------------------------------- generation → AR-DTok (CFG) → VQ
{
  const c = g.generate;
  const N = m.scales.find(s => s.scale === c.scale).tokens;
  const a = await llmGreedy([c.promptIds], 'image', N, false);
  const img = a.out[0].map(t => t - m.tokens.imageBase);
  ok(eqArr(img, c.imageIds), `generate image ids (${img.length})`);
  const fr = await sess.taTokDecoder.run({ ids: i64(img, [1, N]) });
  const feats = Array.from(fr.features.data), C = fr.features.dims[2];
  ok(Math.abs(sum(feats) - c.features.sum) < 1e-2, 'generate features sum');
  const B = 2, cond = [...feats, ...new Array(feats.length).fill(0)];
  let r = await sess.arDTok.run({ input_ids: i64([], [B, 0]), cond: f32(cond, [B, N, C]), attention_mask: i64(new Array(B * N).fill(1), [B, N]),
    position_ids: i64([...Array(N).keys(), ...Array(N).keys()], [B, N]), ...emptyPast(m.arDTok, B) });
  const K = r.logits.dims[1];
  ok(maxDiff(Array.from(r.logits.data.subarray(0, K)), c.arDTokPrefillLogits.cond) < 1e-4 &&
     maxDiff(Array.from(r.logits.data.subarray(K)), c.arDTokPrefillLogits.uncond) < 1e-4, 'arDTok prefill logits (cond, uncond)');
  const codes = [];
  for (let i = 0; i < m.arDTok.codes; i++) {
    const lg = r.logits.data, mixed = new Float32Array(K);
    for (let k = 0; k < K; k++) mixed[k] = lg[K + k] + c.cfgScale * (lg[k] - lg[K + k]);
    const t = argmax(mixed); codes.push(t);
    if (i === m.arDTok.codes - 1) break;
    r = await sess.arDTok.run({ input_ids: i64([t, t], [B, 1]), cond: f32([], [B, 0, C]), attention_mask: i64(new Array(B * (N + i + 1)).fill(1), [B, N + i + 1]),
      position_ids: i64([N + i, N + i], [B, 1]), ...presentsToPast(r, m.arDTok) });
  }
  ok(eqArr(codes, c.codes), `arDTok CFG greedy codes (${codes.length})`);
  const pr = await sess.vqDecoder.run({ codes: i64(c.codes, [1, c.codes.length]) });
  const px = Array.from(pr.pixels.data);
  const d = maxDiff(px.slice(0, c.pixels.first.length), c.pixels.first);
  ok(d < 1e-4 && Math.abs(sum(px) - c.pixels.sum) < 1e-2 && eqArr(pr.pixels.dims, c.pixels.shape), `vq pixels first maxdiff ${d.toExponential(2)}, sum ${sum(px).toFixed(4)} vs ${c.pixels.sum.toFixed(4)}`);
}
console.log(failures ? `${failures} FAILED` : 'all checks passed');
process.exit(failures ? 1 : 0);
