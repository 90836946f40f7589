"""Build the tiny random-weight bundle (tests/fixtures/tiny-bundle/) and golden outputs of the PyTorch reference
pipeline (tests/fixtures/golden/golden.json + PNG inputs/outputs).

    training/py training/make_fixtures.py            # rebuild both (deterministic: seed 1234)
    training/py training/make_fixtures.py --check    # then run training/check_bundle.mjs against them

Everything is seeded; rerunning produces identical weights, golden ids and (up to ONNX serialisation) graphs.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dialect_tar.ar_dtok import ARDTok  # noqa: E402
from dialect_tar.config import ARDTokConfig, LLMConfig, TaTokConfig, VQConfig  # noqa: E402
from dialect_tar.layers import random_init_  # noqa: E402
from dialect_tar.llm import QwenLM  # noqa: E402
from dialect_tar.reference import ImageRef, TarPipeline, Turn  # noqa: E402
from dialect_tar.ta_tok import Codebook, TaTokDecoder, TaTokEncoder  # noqa: E402
from dialect_tar.tokenizer import BPETokenizer, tar_special_tokens  # noqa: E402
import export_bundle as eb  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLE = os.path.join(ROOT, "tests", "fixtures", "tiny-bundle")
GOLDEN = os.path.join(ROOT, "tests", "fixtures", "golden")
SEED = 1234
K = 64            # TA-Tok codebook size = image tokens
TEXT_VOCAB = 300  # 256 bytes + merges
CFG_SCALE = 3.0

CORPUS = [
    "A red circle sits in the middle of the picture.",
    "There is a small blue square in the top left corner.",
    "Two green triangles are next to each other.",
    "The yellow star is bigger than the purple circle.",
    "What shape is in the center of the image?",
    "How many circles can you see?",
    "Describe the image in one sentence.",
    "What color is the square?",
    "Draw a large orange circle on a white background.",
    "Make the triangle blue and move it to the right.",
    "The picture shows three shapes: a circle, a square and a triangle.",
    "A big red square and a tiny green circle.",
    "Is there a star in the image? Yes, there is one star.",
    "No, there are no triangles here.",
    "The background is black and the shapes are bright.",
    "Generate an image of two purple squares.",
    "The circle is above the square, and the star is below it.",
    "Count the shapes: one, two, three, four.",
    "Change the color of the circle to yellow.",
    "Remove the small square from the bottom right corner.",
    "It is a red circle.",
    "The answer is 3.",
    "There are 2 squares and 1 circle.",
    "Where is the green triangle?",
    "The blue circle is on the left side.",
    "A white star on a dark blue background.",
    "You are a helpful assistant.",
    "Thank you! That looks great.",
    "The shapes don't overlap; they're far apart.",
    "Please draw a pink square with a black border.",
    "The orange triangle points up.",
    "I can see four shapes in total.",
]

TOKENIZER_SAMPLES = [
    "a red circle",
    "What color is the square?",
    "Hello, world! It's 2025; numbers: 12345 and 3.14.",
    "line one\nline two\n\n  indented\tand tabbed   ",
    "naïve café, 東京, Ünïcödé — emoji 🙂 ok",
    "<|im_start|>user\nWhat shape is this?<|im_end|>\n<|im_start|>assistant\n",
    "<im_start><S1><I0><I1><I63><I10><im_end>\nDescribe it.",
    "<|endoftext|>they're here, we'll see, I'd say, YOU'RE right",
    "don't  stop\r\n\r\nnow...!!! (ok) [x] {y} $5.00 #1 @me",
]


def fuzz_strings(n: int = 600, seed: int = 7):
    """Random strings that stress the pre-tokeniser: contractions, case, digits, whitespace runs, CR/LF,
    punctuation runs, non-ASCII letters and marks, emoji, and added tokens glued to text."""
    rng = np.random.RandomState(seed)
    atoms = (list("abcXYZ019 .,!?'\"-_/\\()[]{}<>|@#$%^&*+=~`:;") + [" ", "  ", "\n", "\r\n", "\t", "\n\n", " \n ",
             "'s", "'T", "'re", "'VE", "'m", "'ll", "'D", "e\u0301", "ñ", "東京", "Ü", "ß", "🙂", "👍🏽", "ا", "ٹ",
             "Ⅻ", "²", "١٢", "\u00a0", "\u3000", "the", " the", "Shape", " 12", "3.14"] +
             ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<im_start>", "<im_end>", "<S0>", "<S2>", "<I7>", "<I63>",
              "<I6", "I3>", "<|im"])
    out = []
    for _ in range(n):
        k = rng.randint(1, 14)
        out.append("".join(atoms[i] for i in rng.randint(0, len(atoms), k)))
    out += CORPUS
    return out


def configs():
    llm = LLMConfig(vocab_size=TEXT_VOCAB + 8 + K, hidden=64, layers=2, heads=4, kv_heads=2, head_dim=16,
                    intermediate=128, rope_theta=10000.0, tie_embeddings=False, max_positions=1024)
    ta = TaTokConfig(codebook_size=K, code_dim=llm.hidden, input_size=64, encoder_size=72, patch=8, width=64,
                     layers=3, heads=4, mlp=128, select_layer=-2, dec_width=64, dec_layers=2, dec_heads=4,
                     dec_mlp=128, dec_pos_grid=9, feat_dim=64)
    ar = ARDTokConfig(codebook_size=64, cond_dim=ta.feat_dim, hidden=64, layers=2, heads=4, kv_heads=4,
                      head_dim=16, intermediate=128, codes=64, max_positions=ta.tokens(1) + 64)
    vq = VQConfig(codebook_size=64, code_dim=16, grid=8, output_size=64, channels=[16, 32, 32])
    return llm, ta, ar, vq


def build(seed: int = SEED):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    tok = BPETokenizer.train(CORPUS, TEXT_VOCAB, tar_special_tokens(K))
    llm_cfg, ta_cfg, ar_cfg, vq_cfg = configs()
    assert tok.size == llm_cfg.vocab_size, (tok.size, llm_cfg.vocab_size)
    llm = QwenLM(llm_cfg)
    random_init_(llm, g, gain=1.0, emb_std=1.0)
    with torch.no_grad():  # a sharper output head so that greedy choices have clear margins
        llm.lm_head.weight.mul_(3.0)
    codebook = Codebook(K, ta_cfg.code_dim)
    enc, dec = TaTokEncoder(ta_cfg, codebook), TaTokDecoder(ta_cfg, codebook)
    random_init_(enc, g)
    random_init_(dec, g)
    with torch.no_grad():  # the codebook is K rows of the LLM's text embedding table (Tar's text alignment)
        codebook.codebook_embed.copy_(llm.embed_tokens.weight[:K])
    ar = ARDTok(ar_cfg)
    random_init_(ar, g)
    with torch.no_grad():
        ar.output.weight.mul_(3.0)
    from dialect_tar.vq import VQVAE
    vq = VQVAE(vq_cfg)
    random_init_(vq, g, gain=1.0)
    manifest = eb.build_manifest(tok, llm_cfg, ta_cfg, ar_cfg, vq_cfg, name="tiny-random",
                                 version="0.0.1",
                                 description="Random-weight miniature for tests (training/make_fixtures.py)",
                                 image_template="<im_start><S{k}>{tokens}<im_end>", cfg_scale=CFG_SCALE,
                                 max_new_tokens=16)
    # A self-check with the shapes judge (src/shapes/judge.ts), one candidate, so that the product's flag has a path
    # through every harness that loads this bundle as the CLI and the server load theirs.
    manifest["selfCheck"] = {"judge": "shapes", "question": "Describe the image.", "candidates": 1, "temperature": 1.0}
    return tok, llm, enc, dec, ar, vq, manifest


def draw_image(seed: int) -> np.ndarray:
    rng = np.random.RandomState(seed)
    im = Image.new("RGB", (64, 64), tuple(int(c) for c in rng.randint(0, 256, 3)))
    d = ImageDraw.Draw(im)
    for _ in range(4):
        x0, y0 = rng.randint(0, 48, 2)
        w, h = rng.randint(10, 30, 2)
        col = tuple(int(c) for c in rng.randint(0, 256, 3))
        if rng.rand() < 0.5:
            d.ellipse([int(x0), int(y0), int(x0 + w), int(y0 + h)], fill=col)
        else:
            d.rectangle([int(x0), int(y0), int(x0 + w), int(y0 + h)], fill=col)
    arr = np.asarray(im).astype(np.int16)
    arr = arr + rng.randint(-12, 13, arr.shape)           # a little noise so that patches differ
    return np.clip(arr, 0, 255).astype(np.uint8)


def fl(t) -> list:
    return [float(x) for x in torch.as_tensor(t).reshape(-1).tolist()]


def summary(t: torch.Tensor, n_first: int = 16) -> dict:
    t = t.detach().float()
    return {"shape": list(t.shape), "sum": float(t.sum()), "absSum": float(t.abs().sum()),
            "first": fl(t.reshape(-1)[:n_first])}


def margins(steps, lo=None, hi=None):
    m = []
    for lg in steps:
        x = lg if lo is None else lg[:, lo:hi]
        top = x.topk(2, dim=-1).values
        m.append(float((top[:, 0] - top[:, 1]).min()))
    return min(m) if m else None


def make_golden(pipe: TarPipeline, tok: BPETokenizer) -> dict:
    os.makedirs(GOLDEN, exist_ok=True)
    m = pipe.m
    images = {}
    for name, seed in (("image_a.png", 11), ("image_b.png", 22)):
        arr = draw_image(seed)
        Image.fromarray(arr, "RGB").save(os.path.join(GOLDEN, name), optimize=False, compress_level=6)
        back = np.asarray(Image.open(os.path.join(GOLDEN, name)).convert("RGB"))
        assert (back == arr).all()
        images[name] = arr

    g = {"format": "dialect-golden/1",
         "bundle": "tests/fixtures/tiny-bundle",
         "producedBy": f"training/make_fixtures.py (seed {SEED}); PyTorch reference training/dialect_tar/reference.py",
         "tolerance": {"logits": 1e-4, "features": 1e-4, "pixels": 1e-4, "ids": "exact"},
         "conventions": {
             "pixels": "encoder input = PNG's exact RGB (no resize, already image.inputSize), x/255, "
                       "(x - mean)/std per channel, NCHW float32",
             "prompt": "ChatML from manifest.chat/templates; each maximal text run between image splices is "
                       "encoded whole by tokenizer.json (no special tokens added); image tokens spliced as "
                       "imageBase + code",
             "leftPadding": "batch rows padded on the left with tokens.pad; attention_mask 0 there; "
                            "position_ids = max(cumsum(mask) - 1, 0)",
             "greedyText": "argmax over the whole vocabulary; stop before an eos id (eos not included) or at "
                           "maxNewTokens; decode steps feed the chosen id with position = last + 1",
             "greedyImage": "argmax over logits[imageBase : imageBase+imageCount] (+ imageBase); exactly "
                            "scales[scale].tokens tokens; image ids reported as codes 0..K-1",
             "arDTok": "prefill: input_ids [2B,0], cond = [features; zeros] [2B,Nc,C], mask ones, positions "
                       "0..Nc-1; step i feeds code i to both rows at position Nc+i with cond [2B,0,C]; logits "
                       "mixed = uncond + cfgScale*(cond - uncond); greedy argmax; arDTok.codes codes",
             "promptSegments": "the rendered conversation before encoding: strings are encoded (consecutive "
                               "strings concatenated first), arrays are spliced ids",
             "pixels_out": "vq_decoder output float [B,3,H,H] in [0,1]; uint8 = round(clamp(x,0,1)*255)",
         }}

    # tokenizer
    g["tokenizer"] = [{"text": s, "ids": tok.encode(s)} for s in TOKENIZER_SAMPLES]

    # encoder
    g["images"] = [{"file": n, "size": 64} for n in images]
    enc_cases = []
    for n, arr in images.items():
        px = pipe.normalise(arr)
        for s in (1, 2, 3):
            enc_cases.append({"image": n, "scale": s, "ids": pipe.encode_image(px, s)[0].tolist()})
    g["encoder"] = enc_cases
    ids_a2 = next(c["ids"] for c in enc_cases if c["image"] == "image_a.png" and c["scale"] == 2)
    ids_b1 = next(c["ids"] for c in enc_cases if c["image"] == "image_b.png" and c["scale"] == 1)
    ids_a3 = next(c["ids"] for c in enc_cases if c["image"] == "image_a.png" and c["scale"] == 3)

    # TA-Tok decoder
    dec_cases = []
    for label, ids in (("image_a.png@2", ids_a2), ("image_b.png@1", ids_b1), ("image_a.png@3", ids_a3)):
        f = pipe.image_features(ids)
        c = {"from": label, "ids": ids, "summary": summary(f)}
        if len(ids) <= 16:
            c["features"] = fl(f)
        dec_cases.append(c)
    g["taTokDecoder"] = dec_cases

    # LLM prefill logits + greedy understanding
    question = "What shape is in the center of the image?"
    und_prompt = pipe.prompt_ids([Turn("user", question, ImageRef(2, ids_a2), "understand")], "text")
    gen_text = "a red circle"
    gen_prompt = pipe.prompt_ids([Turn("user", gen_text, None, "generate")], "image", 2)
    lg_u, _, _, _ = pipe.prefill([und_prompt])
    lg_g, _, _, _ = pipe.prefill([gen_prompt])
    g["llmPrefill"] = [
        {"name": "understand", "promptIds": und_prompt, "logits": fl(lg_u[0]), "argmax": int(lg_u[0].argmax())},
        {"name": "generate", "promptIds": gen_prompt, "logits": fl(lg_g[0]), "argmax": int(lg_g[0].argmax())},
    ]

    max_new = 12
    ans, steps = pipe.generate_ids([und_prompt], "text", max_new, stop_on_eos=True)
    ans_all, steps_all = pipe.generate_ids([und_prompt], "text", max_new, stop_on_eos=False)
    g["understand"] = {
        "image": "image_a.png", "scale": 2, "question": question, "imageIds": ids_a2,
        "promptSegments": pipe.render([Turn("user", question, ImageRef(2, ids_a2), "understand")], "text"),
        "promptIds": und_prompt,
        "maxNewTokens": max_new,
        "stopRule": "greedy; stop before the first eos id (not included) or after maxNewTokens",
        "answerIds": ans[0], "answerText": tok.decode(ans[0]),
        "answerIdsIgnoringEos": ans_all[0],
        "minTop2Margin": margins(steps_all),
    }

    # generation at scale 2 → AR-DTok with CFG → VQ pixels
    new, steps = pipe.generate_ids([gen_prompt], "image", m["scales"][1]["tokens"])
    img = [t - pipe.image_base for t in new[0]]
    feats = pipe.image_features(img)
    codes = pipe.ardtok_codes(feats, CFG_SCALE)
    with torch.no_grad():
        cond = torch.cat([feats, torch.zeros_like(feats)])
        nc = feats.shape[1]
        ar_lg, _ = pipe.ardtok(torch.zeros(2, 0, dtype=torch.long), cond, torch.ones(2, nc, dtype=torch.long),
                               torch.arange(nc).unsqueeze(0).expand(2, nc), pipe.ardtok.empty_past(2))
    pixels = pipe.vq_pixels(codes)
    u8 = (pixels.clamp(0, 1) * 255).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()
    Image.fromarray(u8, "RGB").save(os.path.join(GOLDEN, "generate_scale2.png"))
    g["generate"] = {
        "prompt": gen_text, "scale": 2,
        "promptSegments": pipe.render([Turn("user", gen_text, None, "generate")], "image", 2),
        "promptIds": gen_prompt,
        "imageIds": img, "imageTokenIds": new[0], "minTop2Margin": margins(steps, pipe.image_base,
                                                                           pipe.image_base + pipe.image_count),
        "features": summary(feats),
        "arDTokPrefillLogits": {"cond": fl(ar_lg[0]), "uncond": fl(ar_lg[1])},
        "cfgScale": CFG_SCALE, "codes": codes[0],
        "pixels": summary(pixels),
        "pixelsUint8Sha256": hashlib.sha256(u8.tobytes()).hexdigest(),
        "pixelsUint8Layout": "HWC RGB bytes of generate_scale2.png",
        "pixelsUint8Note": "float noise (ORT vs PyTorch ~1e-7) can flip a value that lies on a .5 rounding "
                           "boundary (torch.round is half-to-even): compare uint8 with tolerance 1, the sha is "
                           "informative only",
        "outputPng": "generate_scale2.png",
    }

    # two-turn history: turn 1 understand image_b @ scale 3 with a fixed assistant answer, turn 2 a follow-up
    ids_b3 = next(c["ids"] for c in enc_cases if c["image"] == "image_b.png" and c["scale"] == 3)
    hist = [Turn("user", "Describe the image in one sentence.", ImageRef(3, ids_b3), "understand"),
            Turn("assistant", "There is a red circle and a blue square.")]
    follow = "What color is the square?"
    h_prompt = pipe.prompt_ids(hist + [Turn("user", follow, None, "generate")], "text")
    h_lg, _, _, _ = pipe.prefill([h_prompt])
    h_ans, _ = pipe.generate_ids([h_prompt], "text", max_new, stop_on_eos=True)
    g["history"] = {
        "turns": [{"role": "user", "text": hist[0].text, "image": "image_b.png", "scale": 3, "imageIds": ids_b3},
                  {"role": "assistant", "text": hist[1].text},
                  {"role": "user", "text": follow}],
        "promptSegments": pipe.render(hist + [Turn("user", follow, None, "generate")], "text"),
        "promptIds": h_prompt, "prefillLogits": fl(h_lg[0]), "maxNewTokens": max_new,
        "stopRule": g["understand"]["stopRule"], "answerIds": h_ans[0],
    }

    # batch 2 with left padding (the understand prompt and the history prompt)
    b_prompts = [und_prompt, h_prompt]
    ids, mask, pos = pipe.left_pad(b_prompts)
    b_lg, _, _, _ = pipe.prefill(b_prompts)
    b_ans, b_steps = pipe.generate_ids(b_prompts, "text", 8, stop_on_eos=False)
    g["batchLeftPad"] = {
        "promptIds": b_prompts, "pad": pipe.pad, "inputIds": ids.tolist(), "attentionMask": mask.tolist(),
        "positionIds": pos.tolist(), "prefillLogits": [fl(r) for r in b_lg], "maxNewTokens": 8,
        "stopRule": "greedy, exactly maxNewTokens per row (eos ignored)", "answerIds": b_ans,
        "minTop2Margin": margins(b_steps),
    }
    return g


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="run training/check_bundle.mjs afterwards")
    ap.add_argument("--no-export", action="store_true", help="only recompute golden.json")
    a = ap.parse_args()
    torch.set_num_threads(2)
    tok, llm, enc, dec, ar, vq, manifest = build()
    if not a.no_export:
        eb.export_bundle(BUNDLE, tok, llm, enc, dec, ar, vq, manifest)
    pipe = TarPipeline(manifest, tok, llm, enc, dec, ar, vq)
    golden = make_golden(pipe, tok)
    with open(os.path.join(GOLDEN, "golden.json"), "w") as f:
        json.dump(golden, f, ensure_ascii=False)
        f.write("\n")
    print("understand answer", golden["understand"]["answerIds"], "margin", golden["understand"]["minTop2Margin"])
    print("generate image ids", golden["generate"]["imageIds"], "margin", golden["generate"]["minTop2Margin"])
    print("codes", golden["generate"]["codes"])
    print("batch answers", golden["batchLeftPad"]["answerIds"], golden["batchLeftPad"]["minTop2Margin"])
    if a.check:
        fuzz = os.path.join(ROOT, "training", "cache", "tokenizer_fuzz.json")
        os.makedirs(os.path.dirname(fuzz), exist_ok=True)
        with open(fuzz, "w") as f:
            json.dump([{"text": t, "ids": tok.encode(t)} for t in fuzz_strings()], f, ensure_ascii=False)
        subprocess.run(["node", os.path.join(ROOT, "training", "check_bundle.mjs"), BUNDLE, GOLDEN, fuzz],
                       check=True, cwd=ROOT)


if __name__ == "__main__":
    main()
