"""Python side of bench/gpu.sh: builds random-weight bundles with the full released Tar-1.5B architecture and
measures PyTorch eager on the same weights.

    python3 bench/gpu_build.py --out DIR [--size full|mini] [--device cuda] [--skip-torch-bench]

Writes DIR/b256/ and DIR/b512/ (dialect bundles: the LLM, TA-Tok and tokenizer shared through symlinks, AR-DTok
LP at 256 codes + VQ-16 at 16² / AR-DTok LP at 1024 codes + VQ-16 at 32²) and DIR/torch.json (PyTorch eager
decode tokens/s at batch 1 and 16, AR-DTok codes/s, measured device-memory bandwidth, weight bytes).

Architecture (size "full") = the released models as published (docs/released-models.md): Qwen2.5-1.5B-shaped LLM
(28 layers, 1536 wide, 12 heads / 2 KV heads of 128, MLP 8960, tied embeddings) with Tar's vocabulary (assumed
217,216 rows: 151,665 Qwen2.5 tokens + 5 Tar tokens + 65,536 image tokens, padded; the real number is in the
release's config.json and changes the embedding by < 0.1%), SigLIP2 so400m/14 at 384 px (27 layers, features of
the 26th) with the 3-layer Siglip2 decoder, a 65,536-entry codebook, LlamaGen llama-abs-LP AR-DTok (30 layers, 1280
wide, 20 heads) and VQ-16. Weights are random (seeded), so timings are real and outputs are noise.

Export uses torch.onnx.export's TorchScript exporter (dynamo=False) and does not need the `onnx` package: graphs
over 2 GB get one external-data file per tensor, written by PyTorch, each graph in its own folder.
"""
import argparse
import json
import math
import os
import sys
import time
import types

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "training"))
try:
    import regex  # noqa: F401  (dialect_tar.tokenizer compiles its pattern at import; not used here)
except ImportError:
    sys.modules["regex"] = types.SimpleNamespace(compile=lambda *a, **k: None, escape=lambda s: s)
try:
    import onnx  # noqa: F401
    HAVE_ONNX = True
except ImportError:  # export_bundle imports onnx for re-saving large graphs; this script exports without it
    sys.modules["onnx"] = types.ModuleType("onnx")
    HAVE_ONNX = False
import export_bundle as eb  # noqa: E402
from dialect_tar.ar_dtok import ARDTok  # noqa: E402
from dialect_tar.config import ARDTokConfig, LLMConfig, TaTokConfig  # noqa: E402
from dialect_tar.llm import QwenLM  # noqa: E402
from dialect_tar.ta_tok import Codebook, TaTokDecoder, TaTokEncoder  # noqa: E402
from convert.modules import LlamaGenVQConfig, LlamaGenVQDecoder  # noqa: E402

SIZES = {
    "full": {
        "llm": dict(vocab_size=217216, hidden=1536, layers=28, heads=12, kv_heads=2, head_dim=128, intermediate=8960,
                    rope_theta=1e6, rms_eps=1e-6, tie_embeddings=True, max_positions=32768),
        "text_vocab": 151643, "K": 65536,
        "ta": dict(input_size=384, encoder_size=384, patch=14, width=1152, layers=27, heads=16, mlp=4304,
                   dec_width=1152, dec_layers=3, dec_heads=12, dec_mlp=3072, dec_pos_grid=16, feat_dim=1152,
                   code_dim=1152),
        "ar": dict(hidden=1280, layers=30, heads=20, kv_heads=20, head_dim=64, intermediate=3584, codebook_size=16384),
        "vq": dict(codebook_size=16384, code_dim=8, z_channels=256, ch=128, ch_mult=[1, 1, 2, 2, 4], num_res_blocks=2),
    },
    "mini": {  # same graph shapes family, small enough for a CPU rehearsal of the whole script
        "llm": dict(vocab_size=1200, hidden=64, layers=2, heads=4, kv_heads=2, head_dim=16, intermediate=128,
                    rope_theta=1e6, rms_eps=1e-6, tie_embeddings=True, max_positions=4096),
        "text_vocab": 1000, "K": 128,
        "ta": dict(input_size=98, encoder_size=98, patch=14, width=48, layers=3, heads=4, mlp=96, dec_width=48,
                   dec_layers=2, dec_heads=12, dec_mlp=80, dec_pos_grid=16, feat_dim=48, code_dim=48),
        "ar": dict(hidden=64, layers=2, heads=4, kv_heads=4, head_dim=16, intermediate=192, codebook_size=512),
        "vq": dict(codebook_size=512, code_dim=8, z_channels=32, ch=32, ch_mult=[1, 1, 2], num_res_blocks=1),
    },
}
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<im_start>", "<im_end>", "<S0>", "<S1>", "<S2>"]


def log(*a):
    print(f"[{time.strftime('%H:%M:%S')}]", *a, flush=True)


def init_(module: torch.nn.Module, seed: int) -> None:
    """Fast seeded random weights (normal, 1/sqrt(fan_in); norms at 1; embeddings at 0.02 like the releases)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() >= 2:
                std = 0.02 if ("embed" in name or "pos" in name or "codebook" in name) else 1 / math.sqrt(p[0].numel())
                p.copy_(torch.randn(p.shape, generator=g) * std)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.fill_(1.0)


def export(module, args, path, input_names, output_names, dynamic_axes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    kw = dict(input_names=input_names, output_names=output_names, dynamic_axes=dynamic_axes,
              opset_version=eb.OPSET, do_constant_folding=False)
    module.eval()
    with torch.no_grad():
        try:
            torch.onnx.export(module, args, path, dynamo=False, **kw)
        except TypeError as e:  # torch < 2.5 has no dynamo argument
            if "dynamo" not in str(e):
                raise
            torch.onnx.export(module, args, path, **kw)


def tokenizer_json(text_vocab: int, K: int) -> dict:
    """A byte-level BPE tokenizer.json with Tar's id layout: text ids 0…text_vocab-1 (256 byte tokens plus
    unreachable fillers), then the special tokens, then <I0>…<I{K-1}>."""
    from dialect_tar.tokenizer import BYTE_ENC, QWEN2_PATTERN
    vocab = {BYTE_ENC[b]: b for b in range(256)}
    for i in range(256, text_vocab):
        vocab[f"\u0100filler{i}"] = i
    added = SPECIALS + [f"<I{k}>" for k in range(K)]
    bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    return {"version": "1.0", "truncation": None, "padding": None,
            "added_tokens": [{"id": text_vocab + i, "content": t, "single_word": False, "lstrip": False,
                              "rstrip": False, "normalized": False, "special": not t.startswith("<I")}
                             for i, t in enumerate(added)],
            "normalizer": {"type": "NFC"},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": QWEN2_PATTERN}, "behavior": "Isolated", "invert": False}, bl]},
            "post_processor": None, "decoder": bl,
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                      "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": vocab, "merges": []}}


def manifest(S, ta_cfg, ar_cfg, vq_cfg, llm_cfg, files, name) -> dict:
    tv, K = S["text_vocab"], S["K"]
    tid = {t: tv + i for i, t in enumerate(SPECIALS)}
    return {
        "format": "dialect-bundle/1", "name": name, "version": "0.0.0",
        "description": "Random weights, full Tar-1.5B architecture (bench/gpu_build.py)", "experimental": ["edit"],
        "files": files,
        "image": {"inputSize": ta_cfg.input_size, "mean": [0.5] * 3, "std": [0.5] * 3,
                  "outputSize": vq_cfg.output_size, "maxInputPixels": 16777216},
        "tokens": {"imStart": tid["<im_start>"], "imEnd": tid["<im_end>"],
                   "scaleTokens": [tid["<S0>"], tid["<S1>"], tid["<S2>"]], "imageBase": tv + len(SPECIALS),
                   "imageCount": K, "eos": [tid["<|im_end|>"], tid["<|endoftext|>"]], "pad": tid["<|endoftext|>"]},
        "scales": [{"scale": s, "grid": ta_cfg.pooled_grid(s), "tokens": ta_cfg.tokens(s)} for s in (1, 2, 3)],
        "defaultScale": 1,
        "llm": {"layers": llm_cfg.layers, "kvHeads": llm_cfg.kv_heads, "headDim": llm_cfg.head_dim,
                "vocabSize": llm_cfg.vocab_size, "maxPositions": llm_cfg.max_positions,
                "rope": {"theta": llm_cfg.rope_theta}, "dtype": "float32"},
        "taTok": {"codebookSize": K, "dtype": "float32"},
        "arDTok": {"layers": ar_cfg.layers, "kvHeads": ar_cfg.kv_heads, "headDim": ar_cfg.head_dim,
                   "codebookSize": ar_cfg.codebook_size, "condDim": ar_cfg.cond_dim, "codes": ar_cfg.codes,
                   "maxPositions": ar_cfg.max_positions, "dtype": "float32"},
        "vq": {"grid": vq_cfg.grid, "codebookSize": vq_cfg.codebook_size, "outputSize": vq_cfg.output_size,
               "dtype": "float32"},
        "chat": {"system": "You are a helpful assistant.", "turnStart": "<|im_start|>{role}\n",
                 "turnEnd": "<|im_end|>\n"},
        "templates": {"image": "{tokens}", "understand": "{image}\n{prompt}", "generate": "{prompt}",
                      "edit": "{image}\n{prompt}", "imageAnswerPrefix": "<im_start><S{k}>"},
        "sampling": {"text": {"temperature": 0, "topK": 0, "topP": 1, "repetitionPenalty": 1, "maxNewTokens": 256},
                     "image": {"temperature": 1, "topK": 1200, "topP": 0.95},
                     "detok": {"temperature": 1, "topK": 0, "topP": 1, "cfgScale": 4.0}},
    }


def nbytes(m: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in m.parameters())


# ---------------------------------------------------------------------------- PyTorch eager measurements
def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def bandwidth(dev) -> float:
    """Device copy bandwidth in GB/s (read + write of a 2 GiB buffer)."""
    if dev.type != "cuda":
        return None
    x = torch.empty(1 << 29, dtype=torch.float32, device=dev)
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    sync(dev)
    t = time.perf_counter()
    n = 20
    for _ in range(n):
        y.copy_(x)
    sync(dev)
    dt = (time.perf_counter() - t) / n
    del x, y
    return 2 * (1 << 31) / dt / 1e9


@torch.no_grad()
def llm_decode(llm: QwenLM, dev, batch: int, prompt: int, steps: int, dtype) -> dict:
    c = llm.cfg
    ids = torch.randint(0, 1000, (batch, prompt), device=dev)
    mask = torch.ones(batch, prompt, dtype=torch.long, device=dev)
    pos = torch.arange(prompt, device=dev).expand(batch, prompt)
    z = torch.zeros(batch, c.kv_heads, 0, c.head_dim, device=dev, dtype=dtype)
    sync(dev)
    t0 = time.perf_counter()
    logits, past = llm(ids, mask, pos, [(z, z)] * c.layers)
    nxt = logits.argmax(-1)
    sync(dev)
    t1 = time.perf_counter()
    for i in range(steps):
        mask = torch.cat([mask, torch.ones(batch, 1, dtype=torch.long, device=dev)], 1)
        logits, past = llm(nxt.view(batch, 1), mask, torch.full((batch, 1), prompt + i, device=dev), past)
        nxt = logits.argmax(-1)
    sync(dev)
    t2 = time.perf_counter()
    return {"batch": batch, "promptTokens": prompt, "steps": steps, "prefillMs": (t1 - t0) * 1e3,
            "msPerStep": (t2 - t1) * 1e3 / steps, "tokensPerS": batch * steps / (t2 - t1)}


@torch.no_grad()
def ar_codes(ar: ARDTok, dev, nc: int, dtype, cfg_scale=4.0) -> dict:
    c = ar.cfg
    cond = torch.randn(1, nc, c.cond_dim, device=dev, dtype=dtype)
    cond = torch.cat([cond, torch.zeros_like(cond)])
    z = torch.zeros(2, c.kv_heads, 0, c.head_dim, device=dev, dtype=dtype)
    sync(dev)
    t0 = time.perf_counter()
    logits, past = ar(torch.zeros(2, 0, dtype=torch.long, device=dev), cond,
                      torch.ones(2, nc, dtype=torch.long, device=dev), torch.arange(nc, device=dev).expand(2, nc),
                      [(z, z)] * c.layers)
    empty = torch.zeros(2, 0, c.cond_dim, device=dev, dtype=dtype)
    for i in range(c.codes):
        mixed = logits[1] + cfg_scale * (logits[0] - logits[1])
        nxt = mixed.argmax(-1).view(1, 1).expand(2, 1)
        if i == c.codes - 1:
            break
        logits, past = ar(nxt, empty, torch.ones(2, nc + i + 1, dtype=torch.long, device=dev),
                          torch.full((2, 1), nc + i, device=dev), past)
    sync(dev)
    dt = time.perf_counter() - t0
    return {"codes": c.codes, "condTokens": nc, "ms": dt * 1e3, "codesPerS": c.codes / dt}


def _mixed_precision_patch():
    """The LLM builds its RoPE tables and mask in float32 (what the ONNX graph wants); for the bf16 eager run they
    are cast to the weights' dtype here instead of changing the shared module."""
    import dialect_tar.llm as L
    rc, dm = L.rope_cos_sin, L.decoder_mask
    cur = {"dtype": torch.float32}
    L.rope_cos_sin = lambda p, d, t: tuple(x.to(cur["dtype"]) for x in rc(p, d, t))
    L.decoder_mask = lambda m, t: dm(m, t).to(cur["dtype"])
    return cur


def torch_bench(llm, ars, S, dev, quick: bool) -> dict:
    cur = _mixed_precision_patch()
    out = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu", "torch": torch.__version__,
           "bandwidthGBs": bandwidth(dev), "llmWeightBytesFp32": nbytes(llm)}
    steps = 16 if quick else 128
    for dtype in (torch.float32, torch.bfloat16):
        key = "fp32" if dtype == torch.float32 else "bf16"
        cur["dtype"] = dtype
        llm.to(device=dev, dtype=dtype)
        res = []
        for b in (1, 16):
            llm_decode(llm, dev, b, 64, 4, dtype)                  # warm-up
            res.append(llm_decode(llm, dev, b, 64, steps, dtype))
            log(f"torch {key} LLM batch {b}: {res[-1]['tokensPerS']:.1f} tokens/s")
        out[f"llm_{key}"] = res
        llm.to(device="cpu", dtype=torch.float32)
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    for px, ar in ars.items():
        ar.to(dev)
        nc = S["ta_tokens1"]
        ar_codes(ar, dev, nc, torch.float32) if not quick else None
        r = ar_codes(ar, dev, nc, torch.float32)
        log(f"torch fp32 AR-DTok {px}px: {r['codesPerS']:.1f} codes/s")
        out[f"ar_{px}"] = r
        ar.to("cpu")
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return out


# ---------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--skip-torch-bench", action="store_true")
    ap.add_argument("--no-fp16", action="store_true", help="skip the float16 variant of the 256 px bundle")
    ap.add_argument("--fp16-deadline-s", type=float, default=1e9,
                    help="skip the float16 variant when this many seconds have passed before it starts")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    a = ap.parse_args()
    started = time.time()
    torch.set_num_threads(a.threads)
    S = dict(SIZES[a.size])
    out = os.path.abspath(a.out)
    shared = os.path.join(out, "shared")
    os.makedirs(shared, exist_ok=True)
    log("torch", torch.__version__, "device", a.device)

    llm_cfg = LLMConfig(**S["llm"])
    ta_cfg = TaTokConfig(codebook_size=S["K"], **S["ta"])
    S["ta_tokens1"] = ta_cfg.tokens(1)
    llm = QwenLM(llm_cfg)
    init_(llm, 1)
    codebook = Codebook(S["K"], ta_cfg.code_dim)
    enc, dec = TaTokEncoder(ta_cfg, codebook), TaTokDecoder(ta_cfg, codebook)
    init_(enc, 2)
    init_(dec, 3)
    ars, vqs = {}, {}
    for px, grid in ((256, 16), (512, 32)):
        if a.size == "mini":
            grid //= 4
        codes = grid * grid
        ar_cfg = ARDTokConfig(cond_dim=ta_cfg.feat_dim, codes=codes, max_positions=ta_cfg.tokens(1) + codes,
                              rms_eps=1e-5, **S["ar"])
        ars[px] = ARDTok(ar_cfg)
        init_(ars[px], 10 + px)
        vqs[px] = LlamaGenVQDecoder(LlamaGenVQConfig(grid=grid, **S["vq"]))
        init_(vqs[px], 20 + px)
    log(f"built: LLM {nbytes(llm) / 1e9:.2f} GB fp32, TA-Tok {nbytes(enc) / 1e9:.2f}+{nbytes(dec) / 1e9:.2f} GB, "
        f"AR-DTok {nbytes(ars[256]) / 1e9:.2f} GB, VQ {nbytes(vqs[256]) / 1e9:.3f} GB")

    eb._export = export  # onnx-free export (external data written by PyTorch itself)
    t = time.time()
    eb.export_llm(llm, os.path.join(shared, "llm", "llm.onnx"))
    log(f"exported llm ({time.time() - t:.0f}s)")
    eb.export_ta_tok_encoder(enc, os.path.join(shared, "ta_tok_encoder", "ta_tok_encoder.onnx"))
    eb.export_ta_tok_decoder(dec, os.path.join(shared, "ta_tok_decoder", "ta_tok_decoder.onnx"))
    log("exported TA-Tok")
    with open(os.path.join(shared, "tokenizer.json"), "w") as fh:
        json.dump(tokenizer_json(S["text_vocab"], S["K"]), fh)
    for px in ars:
        b = os.path.join(out, f"b{px}")
        os.makedirs(b, exist_ok=True)
        eb.export_ardtok(ars[px], os.path.join(b, "ar_dtok", "ar_dtok.onnx"))
        eb.export_vq_decoder(vqs[px], os.path.join(b, "vq_decoder", "vq_decoder.onnx"))
        for name in ("llm", "ta_tok_encoder", "ta_tok_decoder", "tokenizer.json"):
            link = os.path.join(b, name)
            if not os.path.lexists(link):
                os.symlink(os.path.join("..", "shared", name), link)
        files = {"taTokEncoder": "ta_tok_encoder/ta_tok_encoder.onnx",
                 "taTokDecoder": "ta_tok_decoder/ta_tok_decoder.onnx", "llm": "llm/llm.onnx",
                 "arDTok": "ar_dtok/ar_dtok.onnx", "vqDecoder": "vq_decoder/vq_decoder.onnx",
                 "tokenizer": "tokenizer.json"}
        with open(os.path.join(b, "manifest.json"), "w") as fh:
            json.dump(manifest(S, ta_cfg, ars[px].cfg, vqs[px].cfg, llm_cfg, files, f"bench-tar-1.5b-{px}px"), fh,
                      indent=2)
        log(f"bundle b{px} written")
    del enc, dec
    result = {"size": a.size, "llmWeightBytesFp32": nbytes(llm),
              "llmWeightBytesFp32NoEmbedding": nbytes(llm) - llm.embed_tokens.weight.numel() * 4,
              "arWeightBytesFp32": {px: nbytes(m) for px, m in ars.items()}}
    if not a.skip_torch_bench:
        result.update(torch_bench(llm, ars, S, torch.device(a.device), a.size == "mini"))
    with open(os.path.join(out, "torch.json"), "w") as fh:
        json.dump(result, fh, indent=2)
    log("wrote", os.path.join(out, "torch.json"))
    if a.no_fp16 or time.time() - started > a.fp16_deadline_s:
        log("float16 bundle skipped" + ("" if a.no_fp16 else " (out of time)"))
        return
    if not HAVE_ONNX:
        log("no `onnx` package: skipping the float16 bundle (convert/fp16.py rewrites ONNX files)")
        return
    # b256f16: the 256 px bundle with float16 LLM, AR-DTok and VQ graphs (what convert_tar.py --dtype float16 does)
    from convert.fp16 import convert_file
    b16, b = os.path.join(out, "b256f16"), os.path.join(out, "b256")
    with open(os.path.join(b, "manifest.json")) as fh:
        m = json.load(fh)
    for key, section in (("llm", "llm"), ("arDTok", "arDTok"), ("vqDecoder", "vq")):
        t = time.time()
        src = os.path.join(b, m["files"][key])
        dst = os.path.join(b16, os.path.basename(os.path.dirname(src)), os.path.basename(src))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        convert_file(src, dst)
        m[section]["dtype"] = "float16"
        log(f"float16 {key} ({time.time() - t:.0f}s)")
    for name in ("ta_tok_encoder", "ta_tok_decoder", "tokenizer.json"):
        link = os.path.join(b16, name)
        if not os.path.lexists(link):
            os.symlink(os.path.join("..", "shared", name), link)
    m["name"] += "-fp16"
    with open(os.path.join(b16, "manifest.json"), "w") as fh:
        json.dump(m, fh, indent=2)
    log("bundle b256f16 written")


if __name__ == "__main__":
    main()
