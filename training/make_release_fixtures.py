"""Release-layout fixtures: random models with the released Tar files' exact tensor names and layouts, at reduced
width and depth, written in the published formats, converted by training/convert_tar.py unchanged, and checked.

    training/py training/make_release_fixtures.py           # rebuild tests/fixtures/tar-release-mini/
    training/py training/make_release_fixtures.py --check   # …and run training/check_bundle.mjs on it

Steps:
1. Write the sources into training/cache/release-mini-src/ (not committed; ~3 MB, regenerated identically):
   - `Tar-mini/`: a HuggingFace Qwen2ForCausalLM folder (config.json, generation_config.json, added_tokens.json,
     tokenizer.json, tokenizer_config.json, model.safetensors in bf16, tied embeddings like Tar-1.5B),
   - `ta_tok.pth`: {"model": {"args", "sd"}} with SigLIP (`encoder.*`, Conv2d patches, 3 layers), a Siglip2
     patch-1 decoder (`decoder.vision_model.*`), the SimVQ bottleneck (l2-normalised, stochastic), a teacher copy
     (`teacher.*`) and the scale layer, exactly as TextAlignedTokenizer's state dict is keyed,
   - `ar_dtok_mini.pth`: {"model": {"name", "args", "sd"}} LlamaGen llama-abs layout (clip_proj, abs_pe,
     layers.N.attention.wqkv/wo, feed_forward.w1/w2/w3, attention_norm/ffn_norm, norm, output),
   - `vq_mini.pt`: LlamaGen VQ {"model": state_dict} (encoder and decoder halves, quant_conv, post_quant_conv,
     quantize.embedding, quantize.codebook_used), GroupNorm-32 channels,
   - `siglip-mini/config.json`: the teacher config (heads are not in the weights).
2. Run convert_tar.convert on them → tests/fixtures/tar-release-mini/bundle/.
3. Check the converted PyTorch modules against an independent functional forward of the released layouts (the
   raw state dicts, HF/LlamaGen semantics: hidden_states[-2], avg-pool, cosine argmax, antialiased position
   resize, wqkv split, abs_pe, GroupNorm decoder): ids exact, floats within 1e-4.
4. Golden outputs of the PyTorch reference pipeline (dialect_tar.reference) → tests/fixtures/tar-release-mini/
   golden/golden.json (same schema as tests/fixtures/golden, so training/check_bundle.mjs checks it).
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convert_tar  # noqa: E402
import make_fixtures as mf  # noqa: E402
from convert.safetensors_io import bf16_round, save_file  # noqa: E402
from dialect_tar.reference import ImageRef, TarPipeline, Turn  # noqa: E402
from dialect_tar.tokenizer import BPETokenizer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "tar-release-mini")
BUNDLE = os.path.join(OUT, "bundle")
BUNDLE16 = os.path.join(OUT, "bundle-fp16")
GOLDEN = os.path.join(OUT, "golden")
SRC = os.path.join(ROOT, "training", "cache", "release-mini-src")
SEED = 4321
K = 64                 # TA-Tok codebook = image tokens (released: 65536)
TEXT_VOCAB = 300
VOCAB_PAD = 16         # config.vocab_size > tokenizer size, as in Qwen2 (151936 vs 151665)
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|vision_start|>"]
TAR_SPECIALS = ["<im_start>", "<im_end>", "<S0>", "<S1>", "<S2>"]
# SigLIP teacher (released: so400m, width 1152, 16 heads, 27 layers, mlp 4304, patch 14, 384 px = 27 patches + 6 px
# that the patch convolution never reads; here 100 px = 7 patches + 2 px, the same situation)
SIG = {"hidden_size": 48, "num_attention_heads": 4, "num_hidden_layers": 3, "intermediate_size": 96,
       "patch_size": 14, "image_size": 100, "layer_norm_eps": 1e-6, "hidden_act": "gelu_pytorch_tanh",
       "model_type": "siglip_vision_model"}
DEC = {"layers": 2, "mlp": 80, "pos": 256, "heads": 12}   # Siglip2 decoder: released 3 layers, mlp 3072, 12 heads
AR = {"name": "llama-abs-mini", "dim": 64, "n_layer": 2, "n_head": 4, "multiple_of": 32, "vocab": 64, "codes": 64}
VQ = {"ch": 32, "ch_mult": [1, 1], "z": 32, "embed": 8, "res": 2, "codebook": 64}
CFG_SCALE = 4.0
IMAGE = SIG["image_size"]
TEACHER = "dialect-test/siglip-mini"


# ---------------------------------------------------------------------------- random released state dicts
class Rand:
    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def w(self, *shape, gain=1.0):
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        return torch.randn(*shape, generator=self.g) * (gain / math.sqrt(fan_in))

    def emb(self, *shape, std=1.0):
        return torch.randn(*shape, generator=self.g) * std

    def b(self, n):
        return torch.randn(n, generator=self.g) * 0.1

    def norm(self, n):
        return 1.0 + 0.1 * torch.randn(n, generator=self.g)


def qwen2_sd(r: Rand, cfg: dict) -> dict:
    h, i, nh, kv = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = h // nh
    # The final norm's weights are drawn around 0 (not 1) and the residual branches are doubled: with tied
    # embeddings and norm weights near 1, a random model's greedy choice is always the token it was just fed.
    sd = {"model.embed_tokens.weight": r.emb(cfg["vocab_size"], h), "model.norm.weight": r.emb(h, std=2.0)}
    for n in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{n}."
        sd.update({p + "input_layernorm.weight": r.norm(h), p + "post_attention_layernorm.weight": r.norm(h),
                   p + "self_attn.q_proj.weight": r.w(nh * hd, h), p + "self_attn.q_proj.bias": r.b(nh * hd),
                   p + "self_attn.k_proj.weight": r.w(kv * hd, h), p + "self_attn.k_proj.bias": r.b(kv * hd),
                   p + "self_attn.v_proj.weight": r.w(kv * hd, h), p + "self_attn.v_proj.bias": r.b(kv * hd),
                   p + "self_attn.o_proj.weight": r.w(h, nh * hd, gain=2.0),
                   p + "mlp.gate_proj.weight": r.w(i, h), p + "mlp.up_proj.weight": r.w(i, h),
                   p + "mlp.down_proj.weight": r.w(h, i, gain=2.0)})
    return sd


def vit_layer(r: Rand, p: str, w: int, mlp: int) -> dict:
    sd = {}
    for n in ("layer_norm1", "layer_norm2"):
        sd[f"{p}{n}.weight"], sd[f"{p}{n}.bias"] = r.norm(w), r.b(w)
    for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
        sd[f"{p}self_attn.{n}.weight"], sd[f"{p}self_attn.{n}.bias"] = r.w(w, w), r.b(w)
    sd[f"{p}mlp.fc1.weight"], sd[f"{p}mlp.fc1.bias"] = r.w(mlp, w), r.b(mlp)
    sd[f"{p}mlp.fc2.weight"], sd[f"{p}mlp.fc2.bias"] = r.w(w, mlp), r.b(w)
    return sd


def pooling_head(r: Rand, p: str, w: int, mlp: int) -> dict:
    return {p + "probe": r.emb(1, 1, w), p + "attention.in_proj_weight": r.w(3 * w, w),
            p + "attention.in_proj_bias": r.b(3 * w), p + "attention.out_proj.weight": r.w(w, w),
            p + "attention.out_proj.bias": r.b(w), p + "layernorm.weight": r.norm(w), p + "layernorm.bias": r.b(w),
            p + "mlp.fc1.weight": r.w(mlp, w), p + "mlp.fc1.bias": r.b(mlp), p + "mlp.fc2.weight": r.w(w, mlp),
            p + "mlp.fc2.bias": r.b(w)}


def siglip_vision_sd(r: Rand, p: str) -> dict:
    w, mlp, patch = SIG["hidden_size"], SIG["intermediate_size"], SIG["patch_size"]
    grid = SIG["image_size"] // patch
    sd = {p + "embeddings.patch_embedding.weight": r.w(w, 3, patch, patch),
          p + "embeddings.patch_embedding.bias": r.b(w),
          p + "embeddings.position_embedding.weight": r.emb(grid * grid, w, std=0.5),
          p + "post_layernorm.weight": r.norm(w), p + "post_layernorm.bias": r.b(w)}
    for n in range(SIG["num_hidden_layers"]):
        sd.update(vit_layer(r, f"{p}encoder.layers.{n}.", w, mlp))
    sd.update(pooling_head(r, p + "head.", w, mlp))
    return sd


def ta_tok_checkpoint(r: Rand, teacher: bool = True) -> dict:
    w = SIG["hidden_size"]
    bdim = w  # the released decoder reads the bottleneck output (width) through a Linear of bottleneck_dim inputs
    sd = {}
    sd.update(siglip_vision_sd(r, "encoder."))
    if teacher:
        sd.update({f"teacher.{k[len('encoder.'):]}": v.clone() for k, v in siglip_vision_sd(r, "encoder.").items()})
    D = "decoder.vision_model."
    sd.update({D + "embeddings.patch_embedding.weight": r.w(w, bdim), D + "embeddings.patch_embedding.bias": r.b(w),
               D + "embeddings.position_embedding.weight": r.emb(DEC["pos"], w, std=0.5),
               D + "post_layernorm.weight": r.norm(w), D + "post_layernorm.bias": r.b(w)})
    for n in range(DEC["layers"]):
        sd.update(vit_layer(r, f"{D}encoder.layers.{n}.", w, DEC["mlp"]))
    sd.update(pooling_head(r, D + "head.", w, DEC["mlp"]))
    sd.update({"encode_task_layer.0.weight": r.w(w, w), "encode_task_layer.0.bias": r.b(w),
               "decode_task_layer.0.weight": r.w(w, w), "decode_task_layer.0.bias": r.b(w),
               "decode_task_layer.2.weight": r.w(w, w), "decode_task_layer.2.bias": r.b(w),
               "bottleneck.in_linear.weight": r.w(bdim, w), "bottleneck.in_linear.bias": r.b(bdim),
               "bottleneck.out_linear.weight": r.w(w, bdim), "bottleneck.out_linear.bias": r.b(w),
               "bottleneck.regularizer.embedding.weight": r.emb(K, bdim),
               "bottleneck.regularizer.embedding_proj.weight": r.w(bdim, bdim),
               "bottleneck.regularizer.embedding_proj.bias": r.b(bdim),
               "scale_layer.shift": torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1),
               "scale_layer.scale": torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1)})
    args = {"bottleneck": {"name": "bottleneck", "args": {
                "bottleneck_dim": bdim, "norm": "none",
                "regularizer": {"name": "simvq", "args": {"codebook_size": K, "l2_normalized": True,
                                                          "stochastic": True, "stochastic_temperature": 0.03}}}},
            "bottleneck_token_num": (IMAGE // SIG["patch_size"]) ** 2, "input_size": IMAGE,
            "teacher": TEACHER, "input_type": "quant", "pool_scale": 1, "decoder_depth": DEC["layers"],
            "select_layer_id": -2}
    return {"model": {"args": args, "sd": sd}}


def ar_checkpoint(r: Rand, cond_dim: int, cls: int) -> dict:
    d, nh = AR["dim"], AR["n_head"]
    hidden = int(2 * 4 * d / 3)
    hidden = hidden + (AR["multiple_of"] - hidden % AR["multiple_of"]) % AR["multiple_of"]
    sd = {"clip_proj.weight": r.w(d, cond_dim), "clip_proj.bias": r.b(d),
          "tok_embeddings.weight": r.emb(AR["vocab"], d),
          "abs_pe": r.emb(1, AR["codes"] + cls - 1, d, std=0.3),
          "norm.weight": r.norm(d), "output.weight": r.w(AR["vocab"], d, gain=3.0)}
    for n in range(AR["n_layer"]):
        p = f"layers.{n}."
        sd.update({p + "attention.wqkv.weight": r.w(3 * d, d), p + "attention.wo.weight": r.w(d, d),
                   p + "feed_forward.w1.weight": r.w(hidden, d), p + "feed_forward.w3.weight": r.w(hidden, d),
                   p + "feed_forward.w2.weight": r.w(d, hidden),
                   p + "attention_norm.weight": r.norm(d), p + "ffn_norm.weight": r.norm(d)})
    args = {"vocab_size": AR["vocab"], "cond_dim": cond_dim, "model_type": "clip_cond", "cls_token_num": cls,
            "max_seq_len": AR["codes"], "n_layer": AR["n_layer"], "n_head": AR["n_head"], "dim": d,
            "multiple_of": AR["multiple_of"], "norm_eps": 1e-5, "use_fixed_pe": False}
    return {"model": {"name": AR["name"], "args": args, "sd": sd}}


def vq_checkpoint(r: Rand) -> dict:
    ch, mult, z, nres = VQ["ch"], VQ["ch_mult"], VQ["z"], VQ["res"]
    sd = {}

    def gn(p, c):
        sd[p + ".weight"], sd[p + ".bias"] = r.norm(c), r.b(c)

    def conv(p, cin, cout, k):
        sd[p + ".weight"], sd[p + ".bias"] = r.w(cout, cin, k, k), r.b(cout)

    def res(p, cin, cout):
        gn(p + ".norm1", cin)
        conv(p + ".conv1", cin, cout, 3)
        gn(p + ".norm2", cout)
        conv(p + ".conv2", cout, cout, 3)
        if cin != cout:
            conv(p + ".nin_shortcut", cin, cout, 1)

    def attn(p, c):
        gn(p + ".norm", c)
        for n in ("q", "k", "v", "proj_out"):
            conv(f"{p}.{n}", c, c, 1)

    # encoder half (ignored by the converter, present in the published file)
    conv("encoder.conv_in", 3, ch, 3)
    c = ch
    for i, m in enumerate(mult):
        for j in range(nres):
            res(f"encoder.conv_blocks.{i}.res.{j}", c, ch * m)
            c = ch * m
            if i == len(mult) - 1:
                attn(f"encoder.conv_blocks.{i}.attn.{j}", c)
        if i != len(mult) - 1:
            conv(f"encoder.conv_blocks.{i}.downsample.conv", c, c, 3)
    res("encoder.mid.0", c, c)
    attn("encoder.mid.1", c)
    res("encoder.mid.2", c, c)
    gn("encoder.norm_out", c)
    conv("encoder.conv_out", c, z, 3)
    conv("quant_conv", z, VQ["embed"], 1)
    conv("post_quant_conv", VQ["embed"], z, 1)
    e = r.emb(VQ["codebook"], VQ["embed"])
    sd["quantize.embedding.weight"] = F.normalize(e, dim=-1)
    sd["quantize.codebook_used"] = torch.zeros(65536)
    # decoder half
    c = ch * mult[-1]
    conv("decoder.conv_in", z, c, 3)
    res("decoder.mid.0", c, c)
    attn("decoder.mid.1", c)
    res("decoder.mid.2", c, c)
    for j, i in enumerate(reversed(range(len(mult)))):
        for b in range(nres + 1):
            res(f"decoder.conv_blocks.{j}.res.{b}", c, ch * mult[i])
            c = ch * mult[i]
            if i == len(mult) - 1:
                attn(f"decoder.conv_blocks.{j}.attn.{b}", c)
        if i != 0:
            conv(f"decoder.conv_blocks.{j}.upsample.conv", c, c, 3)
    gn("decoder.norm_out", c)
    conv("decoder.conv_out", c, 3, 3)
    return {"model": sd}


def write_sources(seed: int = SEED) -> dict:
    os.makedirs(SRC, exist_ok=True)
    r = Rand(seed)
    # ---- tokenizer (Qwen2 layout: NFC normaliser, Split regex + ByteLevel, BPE; added tokens after the text)
    added = QWEN_SPECIALS + TAR_SPECIALS + [f"<I{k}>" for k in range(K)]
    tok = BPETokenizer.train(mf.CORPUS, TEXT_VOCAB, added)
    tj = tok.to_hf_json()
    tj["normalizer"] = {"type": "NFC"}
    for a in tj["added_tokens"]:
        a["special"] = not a["content"].startswith("<I")
    llm_dir = os.path.join(SRC, "Tar-mini")
    os.makedirs(llm_dir, exist_ok=True)
    with open(os.path.join(llm_dir, "tokenizer.json"), "w", encoding="utf-8") as fh:
        json.dump(tj, fh, ensure_ascii=False, indent=2)
    with open(os.path.join(llm_dir, "added_tokens.json"), "w") as fh:
        json.dump({t: tok.token_id(t) for t in added}, fh, indent=2)
    eot, ime = tok.token_id("<|endoftext|>"), tok.token_id("<|im_end|>")
    with open(os.path.join(llm_dir, "tokenizer_config.json"), "w") as fh:
        json.dump({"tokenizer_class": "Qwen2Tokenizer", "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                   "chat_template": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                                    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
                                    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"},
                  fh, indent=2)
    cfg = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 64,
           "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2,
           "vocab_size": tok.size + VOCAB_PAD, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
           "max_position_embeddings": 1024, "tie_word_embeddings": True, "hidden_act": "silu",
           "use_sliding_window": False, "torch_dtype": "bfloat16", "bos_token_id": eot, "eos_token_id": ime}
    with open(os.path.join(llm_dir, "config.json"), "w") as fh:
        json.dump(cfg, fh, indent=2)
    with open(os.path.join(llm_dir, "generation_config.json"), "w") as fh:
        json.dump({"bos_token_id": eot, "pad_token_id": eot, "do_sample": True, "eos_token_id": [ime, eot],
                   "repetition_penalty": 1.05, "temperature": 0.7, "top_p": 0.8, "top_k": 20}, fh, indent=2)
    llm_sd = qwen2_sd(r, cfg)
    save_file(llm_sd, os.path.join(llm_dir, "model.safetensors"), "BF16", {"format": "pt"})
    # ---- TA-Tok, AR-DTok, VQ
    ta = ta_tok_checkpoint(r)
    torch.save(ta, os.path.join(SRC, "ta_tok.pth"))
    sig_dir = os.path.join(SRC, "siglip-mini")
    os.makedirs(sig_dir, exist_ok=True)
    with open(os.path.join(sig_dir, "config.json"), "w") as fh:
        json.dump(SIG, fh, indent=2)
    grid = IMAGE // SIG["patch_size"]
    ar = ar_checkpoint(r, SIG["hidden_size"], grid * grid)
    torch.save(ar, os.path.join(SRC, "ar_dtok_mini.pth"))
    vq = vq_checkpoint(r)
    torch.save(vq, os.path.join(SRC, "vq_mini.pt"))
    return {"llm_dir": llm_dir, "llm_cfg": cfg, "llm_sd": {k: bf16_round(v) for k, v in llm_sd.items()},
            "ta": ta["model"], "ar": ar["model"], "vq": vq["model"], "sig_dir": sig_dir}


# ---------------------------------------------------------------------------- independent functional forwards
def rms(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def attend(q, k, v, causal):
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if causal:
        t = s.shape[-1]
        s = s.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(s, -1) @ v


def qwen2_logits(sd, cfg, ids):
    """HF Qwen2ForCausalLM semantics, one row, full sequence → logits of every position."""
    h, nh, kv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd, t = h // nh, len(ids)
    x = sd["model.embed_tokens.weight"][torch.tensor(ids)]
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2).float() / hd))
    f = torch.arange(t).float()[:, None] * inv[None]
    cos, sin = torch.cat([f, f], -1).cos(), torch.cat([f, f], -1).sin()
    rot = lambda z: torch.cat([-z[..., hd // 2:], z[..., :hd // 2]], -1)  # noqa: E731
    for n in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{n}."
        a = rms(x, sd[p + "input_layernorm.weight"], cfg["rms_norm_eps"])
        proj = lambda nm, heads: F.linear(a, sd[p + f"self_attn.{nm}.weight"], sd[p + f"self_attn.{nm}.bias"]  # noqa
                                          ).view(t, heads, hd).transpose(0, 1)
        q, k, v = proj("q_proj", nh), proj("k_proj", kv), proj("v_proj", kv)
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        k, v = k.repeat_interleave(nh // kv, 0), v.repeat_interleave(nh // kv, 0)
        o = attend(q, k, v, True).transpose(0, 1).reshape(t, h)
        x = x + F.linear(o, sd[p + "self_attn.o_proj.weight"])
        a = rms(x, sd[p + "post_attention_layernorm.weight"], cfg["rms_norm_eps"])
        x = x + F.linear(F.silu(F.linear(a, sd[p + "mlp.gate_proj.weight"])) * F.linear(a, sd[p + "mlp.up_proj.weight"]),
                         sd[p + "mlp.down_proj.weight"])
    x = rms(x, sd["model.norm.weight"], cfg["rms_norm_eps"])
    return x @ sd.get("lm_head.weight", sd["model.embed_tokens.weight"]).t()


def vit_layers(sd, p, x, n_layers, heads, eps):
    hidden = [x]
    b, t, w = x.shape
    for n in range(n_layers):
        q = f"{p}{n}."
        a = F.layer_norm(x, (w,), sd[q + "layer_norm1.weight"], sd[q + "layer_norm1.bias"], eps)
        pr = lambda nm: F.linear(a, sd[q + f"self_attn.{nm}.weight"], sd[q + f"self_attn.{nm}.bias"]  # noqa
                                 ).view(b, t, heads, w // heads).transpose(1, 2)
        o = attend(pr("q_proj"), pr("k_proj"), pr("v_proj"), False).transpose(1, 2).reshape(b, t, w)
        x = x + F.linear(o, sd[q + "self_attn.out_proj.weight"], sd[q + "self_attn.out_proj.bias"])
        a = F.layer_norm(x, (w,), sd[q + "layer_norm2.weight"], sd[q + "layer_norm2.bias"], eps)
        a = F.gelu(F.linear(a, sd[q + "mlp.fc1.weight"], sd[q + "mlp.fc1.bias"]), approximate="tanh")
        x = x + F.linear(a, sd[q + "mlp.fc2.weight"], sd[q + "mlp.fc2.bias"])
        hidden.append(x)
    return hidden


def simvq_emb(sd):
    e = F.linear(sd["bottleneck.regularizer.embedding.weight"], sd["bottleneck.regularizer.embedding_proj.weight"],
                 sd["bottleneck.regularizer.embedding_proj.bias"])
    return F.normalize(e, dim=-1)


def ta_tok_encode(sd, pixels01, pool_scale):
    """TextAlignedTokenizer.encode semantics with argmax quantisation; pixels in [0, 1]."""
    x = (pixels01 - 0.5) / 0.5
    pe = F.conv2d(x, sd["encoder.embeddings.patch_embedding.weight"], sd["encoder.embeddings.patch_embedding.bias"],
                  stride=SIG["patch_size"])
    b, w, g, _ = pe.shape
    x = pe.flatten(2).transpose(1, 2) + sd["encoder.embeddings.position_embedding.weight"]
    feats = vit_layers(sd, "encoder.encoder.layers.", x, SIG["num_hidden_layers"], SIG["num_attention_heads"],
                       SIG["layer_norm_eps"])[-2]
    if pool_scale != 1:
        feats = F.avg_pool2d(feats.transpose(1, 2).reshape(b, w, g, g), pool_scale, pool_scale)
        feats = feats.flatten(2).transpose(1, 2)
    z = torch.tanh(F.linear(feats, sd["encode_task_layer.0.weight"], sd["encode_task_layer.0.bias"]))
    z = F.normalize(F.linear(z, sd["bottleneck.in_linear.weight"], sd["bottleneck.in_linear.bias"]), dim=-1)
    return (z @ simvq_emb(sd).t()).argmax(-1)


def ta_tok_decode(sd, ids):
    """decode_from_bottleneck semantics: codebook entry → out_linear → Siglip2 (patch 1) → decode_task_layer."""
    z = F.normalize(simvq_emb(sd)[ids], dim=-1)
    z = F.linear(z, sd["bottleneck.out_linear.weight"], sd["bottleneck.out_linear.bias"])
    D = "decoder.vision_model."
    x = F.linear(z, sd[D + "embeddings.patch_embedding.weight"], sd[D + "embeddings.patch_embedding.bias"])
    p = int(round(math.sqrt(ids.shape[1])))
    pos = sd[D + "embeddings.position_embedding.weight"]
    s = int(round(math.sqrt(pos.shape[0])))
    pos = pos.reshape(s, s, -1).permute(2, 0, 1)[None]
    pos = F.interpolate(pos, size=(p, p), mode="bilinear", align_corners=False, antialias=True)
    x = x + pos[0].reshape(pos.shape[1], p * p).t()
    x = vit_layers(sd, D + "encoder.layers.", x, DEC["layers"], DEC["heads"], 1e-6)[-1]
    x = F.layer_norm(x, (x.shape[-1],), sd[D + "post_layernorm.weight"], sd[D + "post_layernorm.bias"], 1e-6)
    x = torch.tanh(F.linear(x, sd["decode_task_layer.0.weight"], sd["decode_task_layer.0.bias"]))
    return F.linear(x, sd["decode_task_layer.2.weight"], sd["decode_task_layer.2.bias"])


def llamagen_logits(sd, args, cond, codes):
    """ARModel.forward (clip_cond, no cache) → logits [B, T, V] for every position."""
    d, nh = args["dim"], args["n_head"]
    hd = d // nh
    x = F.linear(cond, sd["clip_proj.weight"], sd["clip_proj.bias"])
    if codes.shape[1]:
        x = torch.cat([x, sd["tok_embeddings.weight"][codes]], 1)
    b, t, _ = x.shape
    x = x + sd["abs_pe"][:, :t]
    for n in range(args["n_layer"]):
        p = f"layers.{n}."
        a = rms(x, sd[p + "attention_norm.weight"], args["norm_eps"])
        q, k, v = F.linear(a, sd[p + "attention.wqkv.weight"]).split([d, d, d], -1)
        sh = lambda z: z.view(b, t, nh, hd).transpose(1, 2)  # noqa: E731
        o = attend(sh(q), sh(k), sh(v), True).transpose(1, 2).reshape(b, t, d)
        x = x + F.linear(o, sd[p + "attention.wo.weight"])
        a = rms(x, sd[p + "ffn_norm.weight"], args["norm_eps"])
        x = x + F.linear(F.silu(F.linear(a, sd[p + "feed_forward.w1.weight"])) *
                         F.linear(a, sd[p + "feed_forward.w3.weight"]), sd[p + "feed_forward.w2.weight"])
    return F.linear(rms(x, sd["norm.weight"], args["norm_eps"]), sd["output.weight"])


def llamagen_cfg_greedy(sd, args, feats, cfg_scale):
    cond = torch.cat([feats, torch.zeros_like(feats)])
    codes = torch.zeros(2, 0, dtype=torch.long)
    out = []
    for _ in range(args["max_seq_len"]):
        lg = llamagen_logits(sd, args, cond, codes)[:, -1]
        nxt = (lg[1] + (lg[0] - lg[1]) * cfg_scale).argmax()
        out.append(int(nxt))
        codes = torch.cat([codes, nxt.view(1, 1).expand(2, 1)], 1)
    return out


def vq_decode(sd, codes, grid):
    """LlamaGen VQModel.decode_code + Tar's inverse scaling (x·0.5 + 0.5)."""
    gn = lambda x, p: F.group_norm(x, 32, sd[p + ".weight"], sd[p + ".bias"], 1e-6)  # noqa: E731
    cv = lambda x, p, pad=1: F.conv2d(x, sd[p + ".weight"], sd[p + ".bias"], padding=pad)  # noqa: E731
    sw = lambda x: x * torch.sigmoid(x)  # noqa: E731

    def res(x, p):
        h = cv(sw(gn(x, p + ".norm1")), p + ".conv1")
        h = cv(sw(gn(h, p + ".norm2")), p + ".conv2")
        return (cv(x, p + ".nin_shortcut", 0) if p + ".nin_shortcut.weight" in sd else x) + h

    def attn(x, p):
        b, c, hh, ww = x.shape
        h = gn(x, p + ".norm")
        q, k, v = (cv(h, f"{p}.{n}", 0).reshape(b, c, hh * ww) for n in ("q", "k", "v"))
        a = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(c), -1)          # [B, HWq, HWk]
        return x + cv((v @ a.transpose(1, 2)).reshape(b, c, hh, ww), p + ".proj_out", 0)

    e = F.normalize(sd["quantize.embedding.weight"], dim=-1)[codes]            # [B, G², C]
    z = e.reshape(codes.shape[0], grid, grid, -1).permute(0, 3, 1, 2)
    h = cv(cv(z, "post_quant_conv", 0), "decoder.conv_in")
    h = attn(res(h, "decoder.mid.0"), "decoder.mid.1")
    h = res(h, "decoder.mid.2")
    n = len(VQ["ch_mult"])
    for j in range(n):
        for b in range(VQ["res"] + 1):
            h = res(h, f"decoder.conv_blocks.{j}.res.{b}")
            if f"decoder.conv_blocks.{j}.attn.{b}.q.weight" in sd:
                h = attn(h, f"decoder.conv_blocks.{j}.attn.{b}")
        if j != n - 1:
            h = cv(F.interpolate(h, scale_factor=2.0, mode="nearest"), f"decoder.conv_blocks.{j}.upsample.conv")
    h = cv(sw(gn(h, "decoder.norm_out")), "decoder.conv_out")
    return h * 0.5 + 0.5


# ---------------------------------------------------------------------------- checks and golden
def close(a, b, what, tol=1e-4):
    d = float((torch.as_tensor(a).float() - torch.as_tensor(b).float()).abs().max())
    assert d <= tol, f"{what}: max |Δ| {d} > {tol}"
    print(f"  ok {what} (max |Δ| {d:.2e})")


def draw(seed: int) -> np.ndarray:
    rng = np.random.RandomState(seed)
    small = mf.draw_image(seed)                         # 64×64 shapes with noise
    im = Image.fromarray(small).resize((IMAGE, IMAGE), Image.BILINEAR)
    arr = np.asarray(im).astype(np.int16) + rng.randint(-20, 21, (IMAGE, IMAGE, 3))
    return np.clip(arr, 0, 255).astype(np.uint8)


def check_against_release(src: dict, models: dict, pipe: TarPipeline, images: dict) -> None:
    print("converted modules vs functional released-layout forwards:")
    ta_sd = src["ta"]["sd"]
    for name, arr in images.items():
        px01 = torch.from_numpy(arr.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
        for s in (1, 2, 3):
            ref = ta_tok_encode(ta_sd, px01, s)
            got = pipe.encode_image(pipe.normalise(arr), s)
            assert torch.equal(ref, got), f"TA-Tok ids {name}@{s}: {ref.tolist()} vs {got.tolist()}"
            print(f"  ok TA-Tok ids {name} scale {s} ({ref.shape[1]} ids)")
            close(ta_tok_decode(ta_sd, ref), pipe.image_features(ref[0].tolist()), f"TA-Tok features {name}@{s}")
    prompt = pipe.prompt_ids([], "text")[:20] + list(range(pipe.image_base, pipe.image_base + 6))
    ref = qwen2_logits(src["llm_sd"], src["llm_cfg"], prompt)[-1]
    got, _, _, _ = pipe.prefill([prompt])
    close(ref, got[0], "Qwen2 logits (bf16 weights)")
    feats = pipe.image_features(list(range(9)))
    ref_codes = llamagen_cfg_greedy(src["ar"]["sd"], src["ar"]["args"], feats, CFG_SCALE)
    got_codes = pipe.ardtok_codes(feats, CFG_SCALE)[0]
    assert ref_codes == got_codes, (ref_codes, got_codes)
    print(f"  ok AR-DTok CFG greedy codes ({len(ref_codes)})")
    codes = torch.tensor([got_codes])
    close(vq_decode(src["vq"], codes, int(math.sqrt(len(got_codes)))), pipe.vq_pixels(codes.tolist()), "VQ pixels")


def converter_self_tests(src: dict, pipe: TarPipeline, images: dict) -> None:
    """Layout variants and refusals: a Siglip2 (NaFlex-style) Linear patch embedding converts to the same encoder;
    a checkpoint with a missing or an unknown tensor is refused with a message naming it."""
    import copy
    from convert.released import ConversionError, load_ta_tok
    print("converter self-tests:")
    ta = copy.deepcopy(src["ta"])
    k = "encoder.embeddings.patch_embedding.weight"
    w = ta["sd"][k]                                                    # [W, 3, P, P]
    ta["sd"][k] = w.permute(0, 2, 3, 1).reshape(w.shape[0], -1)       # Linear over patches flattened (p, p, C)
    path = os.path.join(SRC, "ta_tok_linear_patch.pth")
    torch.save({"model": ta}, path)
    enc, _, _, _ = load_ta_tok(path, src["sig_dir"])
    arr = images["image_a.png"]
    assert torch.equal(enc(pipe.normalise(arr), torch.tensor([1])), pipe.encode_image(pipe.normalise(arr), 1))
    print("  ok Linear patch embedding (Siglip2 layout) → same TA-Tok ids")
    for what, edit in (("missing", lambda sd: sd.pop("bottleneck.in_linear.bias")),
                       ("unknown", lambda sd: sd.__setitem__("bottleneck.extra.weight", torch.zeros(1)))):
        bad = copy.deepcopy(src["ta"])
        edit(bad["sd"])
        torch.save({"model": bad}, path)
        try:
            load_ta_tok(path, src["sig_dir"])
        except (ConversionError, KeyError) as e:
            print(f"  ok {what} tensor refused: {str(e)[:100]}")
        else:
            raise AssertionError(f"a checkpoint with a {what} tensor was accepted")
    os.remove(path)


class NFCTokenizer(BPETokenizer):
    """The fixture's tokenizer.json has Qwen2's NFC normaliser; the reference applies it the same way."""

    def _encode_text(self, text):
        import unicodedata
        return super()._encode_text(unicodedata.normalize("NFC", text))


def make_golden(pipe: TarPipeline, tok, images: dict) -> dict:
    os.makedirs(GOLDEN, exist_ok=True)
    for name, arr in images.items():
        Image.fromarray(arr, "RGB").save(os.path.join(GOLDEN, name), optimize=False, compress_level=9)
        assert (np.asarray(Image.open(os.path.join(GOLDEN, name)).convert("RGB")) == arr).all()
    saved = mf.GOLDEN, mf.CFG_SCALE, mf.TOKENIZER_SAMPLES
    mf.GOLDEN, mf.CFG_SCALE = GOLDEN, CFG_SCALE
    mf.TOKENIZER_SAMPLES = [s for s in saved[2]] + ["<im_start><S0><I0><I63><im_end>", "<|vision_start|>x"]
    real_draw = mf.draw_image
    mf.draw_image = lambda seed: images["image_a.png" if seed == 11 else "image_b.png"]
    try:
        g = mf.make_golden(pipe, tok)
    finally:
        mf.GOLDEN, mf.CFG_SCALE, mf.TOKENIZER_SAMPLES = saved
        mf.draw_image = real_draw
    g["bundle"] = "tests/fixtures/tar-release-mini/bundle"
    g["producedBy"] = (f"training/make_release_fixtures.py (seed {SEED}): released-layout random checkpoints → "
                       "training/convert_tar.py → PyTorch reference training/dialect_tar/reference.py")
    g["images"] = [{"file": n, "size": IMAGE} for n in images]
    # Editing (experimental for released Tar): image tokens and the instruction in the user turn, the image answer
    # prefix <im_start><S{k}> after the assistant turn start: the same prompt path as the miniature.
    ids_b2 = next(c["ids"] for c in g["encoder"] if c["image"] == "image_b.png" and c["scale"] == 2)
    # Of a few instructions, the one whose greedy image ids have the widest top-2 margin (robust to float16).
    best = None
    for instr in ("Make the circle blue.", "Change the color of the circle to yellow.", "Remove the small square.",
                  "Make the triangle blue and move it to the right."):
        turns = [Turn("user", instr, ImageRef(2, ids_b2), "edit")]
        e_prompt = pipe.prompt_ids(turns, "image", 2)
        new, steps = pipe.generate_ids([e_prompt], "image", m_tokens(pipe, 2))
        margin = mf.margins(steps, pipe.image_base, pipe.image_base + pipe.image_count)
        if best is None or margin > best[0]:
            best = (margin, instr, turns, e_prompt, new, steps)
    _, instr, turns, e_prompt, new, steps = best
    img = [t - pipe.image_base for t in new[0]]
    codes = pipe.ardtok_codes(pipe.image_features(img), CFG_SCALE)
    g["edit"] = {"image": "image_b.png", "imageScale": 2, "scale": 2, "prompt": instr, "inputImageIds": ids_b2,
                 "promptSegments": pipe.render(turns, "image", 2), "promptIds": e_prompt, "imageIds": img,
                 "minTop2Margin": mf.margins(steps, pipe.image_base, pipe.image_base + pipe.image_count),
                 "cfgScale": CFG_SCALE, "codes": codes[0],
                 "codesMinTop2Margin": cfg_codes_margin(pipe, pipe.image_features(img), CFG_SCALE)}
    # A conversation whose assistant turn is a generated image, then a text question about it: the runtime renders
    # the image answer as the model wrote it (imageAnswerPrefix + ids + <im_end>), not with templates.image.
    gen = g["generate"]
    hist = [Turn("user", gen["prompt"]), Turn("assistant", "", ImageRef(gen["scale"], gen["imageIds"]))]
    q = "What did you draw?"
    segs = pipe.render(hist + [Turn("user", q, None, "generate")], "text")
    h_prompt = pipe.encode_segments(segs)
    h_ans, h_steps = pipe.generate_ids([h_prompt], "text", 12, stop_on_eos=True)
    g["historyWithImage"] = {"turns": [{"role": "user", "text": gen["prompt"]},
                                       {"role": "assistant", "imageIds": gen["imageIds"], "scale": gen["scale"]},
                                       {"role": "user", "text": q}],
                             "promptSegments": segs, "promptIds": h_prompt, "maxNewTokens": 12,
                             "answerIds": h_ans[0], "minTop2Margin": mf.margins(h_steps)}
    g["generate"]["codesMinTop2Margin"] = cfg_codes_margin(pipe, pipe.image_features(g["generate"]["imageIds"]),
                                                           CFG_SCALE)
    return g


@torch.no_grad()
def cfg_codes_margin(pipe, feats, cfg_scale) -> float:
    """Smallest top-1/top-2 gap of the CFG-mixed AR-DTok logits along the greedy path (how robust the codes are)."""
    ar = pipe.ardtok
    b, nc, c = feats.shape
    cond = torch.cat([feats, torch.zeros_like(feats)])
    logits, past = ar(torch.zeros(2, 0, dtype=torch.long), cond, torch.ones(2, nc, dtype=torch.long),
                      torch.arange(nc).unsqueeze(0).expand(2, nc), ar.empty_past(2))
    worst = float("inf")
    for i in range(ar.cfg.codes):
        mixed = logits[1] + cfg_scale * (logits[0] - logits[1])
        top = mixed.topk(2).values
        worst = min(worst, float(top[0] - top[1]))
        nxt = mixed.argmax()
        if i == ar.cfg.codes - 1:
            break
        logits, past = ar(nxt.view(1, 1).expand(2, 1), torch.zeros(2, 0, c), torch.ones(2, nc + i + 1, dtype=torch.long),
                          torch.full((2, 1), nc + i, dtype=torch.long), past)
    return worst


def m_tokens(pipe, scale):
    return next(s["tokens"] for s in pipe.m["scales"] if s["scale"] == scale)


FULL = {  # the released sizes (docs/released-models.md); the teacher's name, not a config, gives its heads
    "SIG": {"hidden_size": 1152, "num_attention_heads": 16, "num_hidden_layers": 27, "intermediate_size": 4304,
            "patch_size": 14, "image_size": 384, "layer_norm_eps": 1e-6, "hidden_act": "gelu_pytorch_tanh"},
    "DEC": {"layers": 3, "mlp": 3072, "pos": 256, "heads": 12},
    "AR": {"name": "llama-abs-LP", "dim": 1280, "n_layer": 30, "n_head": 20, "multiple_of": 256, "vocab": 16384,
           "codes": 256},
    "VQ": {"ch": 128, "ch_mult": [1, 1, 2, 2, 4], "z": 256, "embed": 8, "res": 2, "codebook": 16384},
    "K": 65536,
}


def full_size_layouts(folder: str) -> None:
    """Released sizes, not just layouts: writes full-size TA-Tok (no teacher copy), llama-abs-LP AR-DTok (name only,
    as published: no dims in args) and VQ-16 checkpoints plus a tiny LLM with 65,536 image tokens, and runs the
    converter with --skip-export (every mapping, shape and manifest check, no ONNX). ~6 GB of disk and RAM."""
    global SIG, DEC, AR, VQ, K, SRC, IMAGE, TEACHER
    SIG, DEC, AR, VQ, K = FULL["SIG"], FULL["DEC"], FULL["AR"], FULL["VQ"], FULL["K"]
    TEACHER = "google/siglip2-so400m-patch14-384"
    IMAGE, SRC = SIG["image_size"], folder
    os.makedirs(folder, exist_ok=True)
    r = Rand(SEED)
    added = QWEN_SPECIALS + TAR_SPECIALS + [f"<I{k}>" for k in range(K)]
    tok = BPETokenizer.train(mf.CORPUS[:4], 280, added)
    llm_dir = os.path.join(folder, "Tar-tiny-llm")
    os.makedirs(llm_dir, exist_ok=True)
    tok.save(os.path.join(llm_dir, "tokenizer.json"))
    cfg = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 32, "intermediate_size": 64,
           "num_attention_heads": 2, "num_key_value_heads": 1, "num_hidden_layers": 1, "vocab_size": tok.size + 7,
           "rms_norm_eps": 1e-6, "rope_theta": 1e6, "max_position_embeddings": 32768, "tie_word_embeddings": False}
    with open(os.path.join(llm_dir, "config.json"), "w") as fh:
        json.dump(cfg, fh)
    with open(os.path.join(llm_dir, "generation_config.json"), "w") as fh:
        json.dump({"eos_token_id": [tok.token_id("<|im_end|>"), tok.token_id("<|endoftext|>")],
                   "pad_token_id": tok.token_id("<|endoftext|>")}, fh)
    sd = qwen2_sd(r, cfg)
    sd["lm_head.weight"] = r.w(cfg["vocab_size"], 32)
    save_file(sd, os.path.join(llm_dir, "model.safetensors"), "BF16")
    t = time.time()
    torch.save(ta_tok_checkpoint(r, teacher=False), os.path.join(folder, "ta_tok.pth"))
    grid = IMAGE // SIG["patch_size"]
    ar = ar_checkpoint(r, SIG["hidden_size"], grid * grid)
    for k in ("dim", "n_layer", "n_head", "multiple_of"):
        ar["model"]["args"].pop(k)
    torch.save(ar, os.path.join(folder, "ar_dtok_lp_256px.pth"))
    del ar
    torch.save(vq_checkpoint(r), os.path.join(folder, "vq_ds16_t2i.pt"))
    print(f"wrote full-size sources in {time.time() - t:.0f}s")
    out = os.path.join(folder, "bundle")
    convert_tar.main(["--llm", llm_dir, "--ta-tok", os.path.join(folder, "ta_tok.pth"),
                      "--ar-dtok", os.path.join(folder, "ar_dtok_lp_256px.pth"),
                      "--vq", os.path.join(folder, "vq_ds16_t2i.pt"), "--out", out, "--skip-export"])
    m = json.load(open(os.path.join(out, "manifest.json")))
    print(json.dumps({k: m[k] for k in ("scales", "arDTok", "vq", "image")}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="run training/check_bundle.mjs afterwards")
    ap.add_argument("--full-size-layouts", metavar="DIR",
                    help="instead: released-size checkpoints in DIR through the converter's checks (no export)")
    a = ap.parse_args()
    torch.set_num_threads(2)
    if a.full_size_layouts:
        full_size_layouts(a.full_size_layouts)
        return
    torch.manual_seed(SEED)
    src = write_sources()
    conv_args_list = [
        "--llm", src["llm_dir"], "--ta-tok", os.path.join(SRC, "ta_tok.pth"),
        "--ar-dtok", os.path.join(SRC, "ar_dtok_mini.pth"), "--vq", os.path.join(SRC, "vq_mini.pt"),
        "--out", BUNDLE, "--name", "tar-release-mini", "--version", "0.0.1",
        "--description", "Random weights in the released Tar layouts at reduced size "
                         "(training/make_release_fixtures.py)",
        "--teacher-config", src["sig_dir"], "--max-new-tokens", "16"]
    conv_args = convert_tar.parser().parse_args(conv_args_list)
    with torch.no_grad():
        out = convert_tar.convert(conv_args)
    m = out["manifest"]
    tok = NFCTokenizer.load(os.path.join(BUNDLE, "tokenizer.json"))
    pipe = TarPipeline(m, tok, out["llm"], out["encoder"], out["decoder"], out["ardtok"], out["vq"])
    images = {"image_a.png": draw(11), "image_b.png": draw(22)}
    check_against_release(src, out, pipe, images)
    converter_self_tests(src, pipe, images)
    g = make_golden(pipe, tok, images)
    with open(os.path.join(GOLDEN, "golden.json"), "w") as fh:
        json.dump(g, fh, ensure_ascii=False)
        fh.write("\n")
    print("understand", g["understand"]["answerIds"], "margin", g["understand"]["minTop2Margin"])
    print("generate", g["generate"]["imageIds"], "margin", g["generate"]["minTop2Margin"])
    print("codes", g["generate"]["codes"])
    print("edit", g["edit"]["imageIds"], "margin", g["edit"]["minTop2Margin"])
    print("codes margins", g["generate"]["codesMinTop2Margin"], g["edit"]["codesMinTop2Margin"])
    # The same bundle with float16 LLM, AR-DTok and VQ graphs (convert_tar.py --dtype float16), checked by
    # tests/model/release-mini.test.ts against the float32 golden with float16 tolerances.
    if os.path.exists(BUNDLE16):
        shutil.rmtree(BUNDLE16)
    shutil.copytree(BUNDLE, BUNDLE16)
    m16 = json.loads(json.dumps(m))
    convert_tar.to_float16(BUNDLE16, m16, ["llm", "arDTok", "vq"])
    m16["name"] += "-fp16"
    with open(os.path.join(BUNDLE16, "manifest.json"), "w") as fh:
        json.dump(m16, fh, indent=2)
        fh.write("\n")
    if a.check:
        fuzz = os.path.join(ROOT, "training", "cache", "release_tokenizer_fuzz.json")
        with open(fuzz, "w") as fh:
            json.dump([{"text": t, "ids": tok.encode(t)} for t in mf.fuzz_strings()], fh, ensure_ascii=False)
        subprocess.run(["node", os.path.join(ROOT, "training", "check_bundle.mjs"), BUNDLE, GOLDEN, fuzz],
                       check=True, cwd=ROOT)
        # The external-data path that released-size graphs take (> 1.8 GB), forced on the mini sources: the same
        # bundle with every graph's weights in a .onnx.data file must pass the same checks.
        import export_bundle as eb
        ext = os.path.join(ROOT, "training", "cache", "release-mini-external")
        saved, eb.EXTERNAL_DATA_BYTES = eb.EXTERNAL_DATA_BYTES, 1024
        try:
            args = list(conv_args_list)
            args[args.index("--out") + 1] = ext
            with torch.no_grad():
                convert_tar.convert(convert_tar.parser().parse_args(args))
        finally:
            eb.EXTERNAL_DATA_BYTES = saved
        assert os.path.exists(os.path.join(ext, "llm.onnx.data")), "external data was not written"
        subprocess.run(["node", os.path.join(ROOT, "training", "check_bundle.mjs"), ext, GOLDEN], check=True, cwd=ROOT)


if __name__ == "__main__":
    main()
