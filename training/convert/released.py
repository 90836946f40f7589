"""Readers of the released Tar files and their mapping onto the Dialect modules.

Every released tensor is either mapped onto exactly one Dialect parameter, or listed as deliberately unused (with
the reason), or the conversion stops: a checkpoint with a layout this code does not know is never half-converted.
"""
import json
import math
import os
import re
from typing import Dict, List, Optional, Tuple

import torch

from dialect_tar.ar_dtok import ARDTok
from dialect_tar.compat import torch_load
from dialect_tar.config import ARDTokConfig, LLMConfig, TaTokConfig
from dialect_tar.llm import QwenLM
from dialect_tar.ta_tok import Codebook, TaTokDecoder, TaTokEncoder

from .modules import L2TaTokEncoder, LlamaGenVQConfig, LlamaGenVQDecoder, PlainCodebook
from .safetensors_io import load_folder

# SigLIP teachers whose config the converter knows (a ta_tok.pth names its teacher in args["teacher"]; the
# transformers config is not part of the checkpoint). Values from the published config.json of the teacher.
KNOWN_TEACHERS = {
    "google/siglip2-so400m-patch14-384": {"hidden_size": 1152, "num_attention_heads": 16, "num_hidden_layers": 27,
                                          "intermediate_size": 4304, "patch_size": 14, "image_size": 384,
                                          "layer_norm_eps": 1e-6, "hidden_act": "gelu_pytorch_tanh"},
}
# TA-Tok's decoder is a transformers Siglip2VisionModel built from Siglip2VisionConfig() defaults, updated with
# patch_size 1, num_hidden_layers = decoder_depth, num_channels = bottleneck_dim, hidden_size = teacher width.
# Heads and eps stay at the defaults: 12 heads, 1e-6, gelu_pytorch_tanh.
SIGLIP2_DEFAULT_HEADS = 12
SIGLIP2_DEFAULT_EPS = 1e-6
# LlamaGen "llama-abs-*" model names (n_layer, n_head, dim).
LLAMA_ABS = {"llama-abs-S": (12, 6, 384), "llama-abs-B": (12, 12, 768), "llama-abs-L": (24, 16, 1024),
             "llama-abs-LP": (30, 20, 1280), "llama-abs-XL": (36, 20, 1280), "llama-abs-XXL": (48, 24, 1536),
             "llama-abs-XXXL": (48, 40, 2560)}


class ConversionError(ValueError):
    pass


def _layer_count(sd: Dict[str, torch.Tensor], prefix: str) -> int:
    pat = re.compile(re.escape(prefix) + r"(\d+)\.")
    idx = {int(m.group(1)) for k in sd for m in [pat.match(k)] if m}
    if not idx:
        return 0
    if idx != set(range(max(idx) + 1)):
        raise ConversionError(f"layers under {prefix} are not numbered 0…n-1: {sorted(idx)[:8]}")
    return max(idx) + 1


def _need(sd, key, what):
    if key not in sd:
        raise ConversionError(f"{what}: the checkpoint has no tensor {key}")
    return sd[key]


class no_init:
    """Builds modules without drawing random initial weights: Linear/Embedding/LayerNorm/Conv parameters are left as
    uninitialised memory, which the OS commits only when the checkpoint's values are copied in. With `load_into`
    consuming its dict, a multi-GB model then needs about one copy of its weights in RAM, not three."""

    CLASSES = (torch.nn.Linear, torch.nn.Embedding, torch.nn.LayerNorm, torch.nn.Conv2d, torch.nn.GroupNorm)

    def __enter__(self):
        self.saved = [(c, c.reset_parameters) for c in self.CLASSES]
        for c in self.CLASSES:
            c.reset_parameters = lambda self: None
        return self

    def __exit__(self, *exc):
        for c, f in self.saved:
            c.reset_parameters = f
        return False


def load_into(module: torch.nn.Module, mapped: Dict[str, torch.Tensor], what: str) -> None:
    """Strict load: every parameter/persistent buffer of `module` must be in `mapped` with the same shape, and
    `mapped` must hold nothing else. Consumes `mapped` (each source tensor is released once copied)."""
    state = module.state_dict()
    missing = [k for k in state if k not in mapped]
    extra = [k for k in mapped if k not in state]
    bad = [f"{k} {tuple(mapped[k].shape)} != {tuple(state[k].shape)}" for k in state
           if k in mapped and tuple(mapped[k].shape) != tuple(state[k].shape)]
    if missing or extra or bad:
        raise ConversionError(f"{what}: missing {missing[:6]}, unexpected {extra[:6]}, shape mismatch {bad[:6]}")
    with torch.no_grad():
        for k, t in state.items():
            t.copy_(mapped.pop(k).to(t.dtype))


def _check_used(sd: Dict[str, torch.Tensor], used: set, ignored: List[Tuple[str, str]], what: str) -> List[str]:
    """Every key must be used or match an ignore pattern; returns a report of the ignored groups."""
    unknown, report = [], {}
    for k in sd:
        if k in used:
            continue
        for pat, why in ignored:
            if re.match(pat, k):
                report.setdefault(why, 0)
                report[why] += 1
                break
        else:
            unknown.append(k)
    if unknown:
        raise ConversionError(f"{what}: tensors this converter does not know: {unknown[:10]}"
                              f"{' …' if len(unknown) > 10 else ''}")
    return [f"{n} tensors: {why}" for why, n in report.items()]


# ---------------------------------------------------------------------------- LLM (HuggingFace Qwen2 folder)
def read_json(path: str, required: bool = True) -> Optional[dict]:
    if not os.path.exists(path):
        if required:
            raise ConversionError(f"{path} is missing")
        return None
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def load_weights(folder: str) -> Dict[str, torch.Tensor]:
    """model.safetensors (or its shards); pytorch_model.bin (or its shards) when there is no safetensors file."""
    try:
        return load_folder(folder)
    except FileNotFoundError:
        index = os.path.join(folder, "pytorch_model.bin.index.json")
        if os.path.exists(index):
            files = sorted(set(read_json(index)["weight_map"].values()))
        elif os.path.exists(os.path.join(folder, "pytorch_model.bin")):
            files = ["pytorch_model.bin"]
        else:
            raise ConversionError(f"{folder} has no model.safetensors, pytorch_model.bin or their shard indexes")
        sd = {}
        for f in files:
            for k, v in torch_load(os.path.join(folder, f)).items():
                sd[k] = v.float() if v.is_floating_point() else v
        return sd


def load_llm(folder: str) -> Tuple[QwenLM, dict, List[str]]:
    hf = read_json(os.path.join(folder, "config.json"))
    arch = hf.get("architectures") or []
    if hf.get("model_type") != "qwen2" and "Qwen2ForCausalLM" not in arch:
        raise ConversionError(f"{folder}/config.json: model_type {hf.get('model_type')!r}, architectures {arch}; "
                              "only Qwen2ForCausalLM is supported")
    if hf.get("hidden_act", "silu") != "silu":
        raise ConversionError(f"hidden_act {hf.get('hidden_act')!r} is not silu")
    if hf.get("use_sliding_window"):
        raise ConversionError("use_sliding_window is true; the Dialect LLM graph has full attention only")
    if hf.get("rope_scaling"):
        raise ConversionError(f"rope_scaling {hf['rope_scaling']!r} is not supported")
    sd = load_weights(folder)
    heads, hidden = hf["num_attention_heads"], hf["hidden_size"]
    head_dim = hf.get("head_dim", hidden // heads)
    tied = bool(hf.get("tie_word_embeddings", False))
    cfg = LLMConfig(vocab_size=hf["vocab_size"], hidden=hidden, layers=hf["num_hidden_layers"], heads=heads,
                    kv_heads=hf.get("num_key_value_heads", heads), head_dim=head_dim,
                    intermediate=hf["intermediate_size"], rope_theta=float(hf.get("rope_theta", 10000.0)),
                    rms_eps=float(hf.get("rms_norm_eps", 1e-6)), tie_embeddings=tied,
                    max_positions=int(hf.get("max_position_embeddings", 32768)),
                    qkv_bias="model.layers.0.self_attn.q_proj.bias" in sd)
    n = _layer_count(sd, "model.layers.")
    if n != cfg.layers:
        raise ConversionError(f"config.json says {cfg.layers} layers, the weights have {n}")
    mapped, used = {}, set()
    for k, v in sd.items():
        if k.startswith("model.") and not k.endswith("rotary_emb.inv_freq"):
            mapped[k[len("model."):]] = v
            used.add(k)
    if tied:
        if "lm_head.weight" in sd and not torch.equal(sd["lm_head.weight"], sd["model.embed_tokens.weight"]):
            raise ConversionError("tie_word_embeddings is true but lm_head.weight differs from embed_tokens")
    else:
        mapped["lm_head.weight"] = _need(sd, "lm_head.weight", "LLM")
        used.add("lm_head.weight")
    notes = _check_used(sd, used, [(r"lm_head\.weight$", "lm_head (tied to embed_tokens)"),
                                   (r".*rotary_emb\.inv_freq$", "RoPE buffers (recomputed)")], "LLM")
    sd.clear()                  # `mapped` holds the tensors now; load_into releases each once copied
    with no_init():
        llm = QwenLM(cfg)
    load_into(llm, mapped, "LLM")
    return llm.eval(), hf, notes


# ---------------------------------------------------------------------------- TA-Tok (ta_tok.pth)
def _teacher_config(args: dict, teacher_config: Optional[str]) -> dict:
    if teacher_config:
        path = os.path.join(teacher_config, "config.json") if os.path.isdir(teacher_config) else teacher_config
        c = read_json(path)
        return c.get("vision_config", c)
    name = args.get("teacher", "google/siglip2-so400m-patch14-384")
    if name in KNOWN_TEACHERS:
        return KNOWN_TEACHERS[name]
    raise ConversionError(f"ta_tok: unknown teacher {name!r}; pass --teacher-config with its config.json")


def load_ta_tok(path: str, teacher_config: Optional[str] = None,
                decoder_heads: int = SIGLIP2_DEFAULT_HEADS) -> Tuple[TaTokEncoder, TaTokDecoder, dict, List[str]]:
    ck = torch_load(path)
    if not (isinstance(ck, dict) and "model" in ck and "args" in ck["model"] and "sd" in ck["model"]):
        raise ConversionError(f"{path}: expected {{'model': {{'args', 'sd'}}}}")
    args, sd = ck["model"]["args"], ck["model"]["sd"]
    sd = {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
    teacher = _teacher_config(args, teacher_config)
    bott = args.get("bottleneck", {})
    reg = bott.get("args", {}).get("regularizer", {})
    reg_name, reg_args = reg.get("name", "simvq"), reg.get("args", {})
    if reg_name != "simvq":
        raise ConversionError(f"ta_tok: regularizer {reg_name!r}; only simvq is supported")
    l2 = bool(reg_args.get("l2_normalized", False))

    E = "encoder."
    pw = _need(sd, E + "embeddings.patch_embedding.weight", "ta_tok encoder")
    width = pw.shape[0]
    if pw.dim() == 4:
        patch_w = pw
    elif pw.dim() == 2:  # Siglip2 (NaFlex) layout: Linear over patches flattened as (p, p, C)
        p = int(round(math.sqrt(pw.shape[1] / 3)))
        patch_w = pw.view(width, p, p, 3).permute(0, 3, 1, 2).contiguous()
    else:
        raise ConversionError(f"ta_tok: patch_embedding has shape {tuple(pw.shape)}")
    patch = patch_w.shape[-1]
    pos = _need(sd, E + "embeddings.position_embedding.weight", "ta_tok encoder")
    grid = int(round(math.sqrt(pos.shape[0])))
    if grid * grid != pos.shape[0]:
        raise ConversionError(f"ta_tok: {pos.shape[0]} position embeddings are not a square grid")
    input_size = int(args.get("input_size", grid * patch))
    if input_size // patch != grid:  # 384 px at patch 14: 27 patches, the last 6 pixels unused (a valid Conv2d)
        raise ConversionError(f"ta_tok: input_size {input_size} gives {input_size // patch} patches a side, the "
                              f"position table has {grid}")
    layers = _layer_count(sd, E + "encoder.layers.")
    if teacher.get("hidden_size", width) != width:
        raise ConversionError(f"ta_tok: teacher hidden_size {teacher.get('hidden_size')} != weights {width}")
    if teacher.get("hidden_act", "gelu_pytorch_tanh") not in ("gelu_pytorch_tanh", "gelu_tanh"):
        raise ConversionError(f"ta_tok: teacher hidden_act {teacher.get('hidden_act')!r} is not gelu tanh")
    select = int(args.get("select_layer_id", -2))
    mlp = _need(sd, E + "encoder.layers.0.mlp.fc1.weight", "ta_tok").shape[0]
    K, bdim = _need(sd, "bottleneck.regularizer.embedding.weight", "ta_tok").shape
    D = "decoder.vision_model."
    dpw = _need(sd, D + "embeddings.patch_embedding.weight", "ta_tok decoder")
    if dpw.dim() != 2:
        raise ConversionError(f"ta_tok decoder: patch_embedding has shape {tuple(dpw.shape)}, expected Linear")
    dec_width = dpw.shape[0]
    out_dim = _need(sd, "bottleneck.out_linear.weight", "ta_tok").shape[0]
    if dpw.shape[1] != out_dim:
        raise ConversionError(f"ta_tok: decoder input {dpw.shape[1]} != bottleneck output {out_dim}")
    if out_dim != width:
        raise ConversionError(f"ta_tok: bottleneck output {out_dim} != encoder width {width}")
    dpos = _need(sd, D + "embeddings.position_embedding.weight", "ta_tok")
    dgrid = int(round(math.sqrt(dpos.shape[0])))
    cfg = TaTokConfig(codebook_size=K, code_dim=bdim, input_size=input_size, encoder_size=input_size, patch=patch,
                      width=width, layers=layers, heads=int(teacher["num_attention_heads"]), mlp=mlp,
                      select_layer=select, scales=[1, 2, 3], ln_eps=float(teacher.get("layer_norm_eps", 1e-6)),
                      dec_width=dec_width, dec_layers=_layer_count(sd, D + "encoder.layers."), dec_heads=decoder_heads,
                      dec_mlp=_need(sd, D + "encoder.layers.0.mlp.fc1.weight", "ta_tok").shape[0], dec_pos_grid=dgrid,
                      feat_dim=_need(sd, "decode_task_layer.2.weight", "ta_tok").shape[0])
    if width % cfg.heads or dec_width % cfg.dec_heads:
        raise ConversionError(f"ta_tok: widths {width}/{dec_width} not divisible by heads {cfg.heads}/{cfg.dec_heads}")
    if cfg.ln_eps != SIGLIP2_DEFAULT_EPS:
        raise ConversionError("ta_tok: encoder and decoder LayerNorm eps differ; not supported")
    n_used = select if select >= 0 else layers + 1 + select

    with no_init():
        codebook = Codebook(K, bdim) if l2 else PlainCodebook(K, bdim)
        enc = (TaTokEncoder if l2 else L2TaTokEncoder)(cfg, codebook)
        dec = TaTokDecoder(cfg, codebook)
    used = set()

    def take(key):
        used.add(key)
        return _need(sd, key, "ta_tok")

    def vit_block(src: str, dst: str, out: dict):
        for a, b in (("layer_norm1", "layer_norm1"), ("self_attn.q_proj", "q_proj"), ("self_attn.k_proj", "k_proj"),
                     ("self_attn.v_proj", "v_proj"), ("self_attn.out_proj", "out_proj"),
                     ("layer_norm2", "layer_norm2"), ("mlp.fc1", "fc1"), ("mlp.fc2", "fc2")):
            for t in ("weight", "bias"):
                out[f"{dst}{b}.{t}"] = take(f"{src}{a}.{t}")

    cb = {"codebook.codebook_embed": take("bottleneck.regularizer.embedding.weight"),
          "codebook.codebook_proj.weight": take("bottleneck.regularizer.embedding_proj.weight"),
          "codebook.codebook_proj.bias": take("bottleneck.regularizer.embedding_proj.bias")}
    m_enc = dict(cb)
    used.add(E + "embeddings.patch_embedding.weight")
    m_enc["patch_embed.weight"] = patch_w
    m_enc["patch_embed.bias"] = take(E + "embeddings.patch_embedding.bias")
    m_enc["pos_embed"] = take(E + "embeddings.position_embedding.weight")
    for i in range(n_used):
        vit_block(f"{E}encoder.layers.{i}.", f"blocks.{i}.", m_enc)
    for t in ("weight", "bias"):
        m_enc[f"encode_task_layer.0.{t}"] = take(f"encode_task_layer.0.{t}")
        m_enc[f"in_linear.{t}"] = take(f"bottleneck.in_linear.{t}")
    load_into(enc, m_enc, "ta_tok encoder")

    m_dec = dict(cb)
    for t in ("weight", "bias"):
        m_dec[f"out_linear.{t}"] = take(f"bottleneck.out_linear.{t}")
        m_dec[f"patch_embed.{t}"] = take(f"{D}embeddings.patch_embedding.{t}")
        m_dec[f"post_layernorm.{t}"] = take(f"{D}post_layernorm.{t}")
        m_dec[f"decode_task_layer.0.{t}"] = take(f"decode_task_layer.0.{t}")
        m_dec[f"decode_task_layer.2.{t}"] = take(f"decode_task_layer.2.{t}")
    m_dec["pos_embed"] = take(f"{D}embeddings.position_embedding.weight")
    for i in range(cfg.dec_layers):
        vit_block(f"{D}encoder.layers.{i}.", f"blocks.{i}.", m_dec)
    load_into(dec, m_dec, "ta_tok decoder")

    notes = _check_used(sd, used, [
        (r"teacher\.", "distillation teacher (training only)"),
        (rf"encoder\.encoder\.layers\.({'|'.join(str(i) for i in range(n_used, layers))})\.",
         f"encoder layers after the selected one (select_layer_id {select})"),
        (r"encoder\.post_layernorm\.", "encoder post_layernorm (features are taken before it)"),
        (r"encoder\.head\.", "encoder attention-pooling head (unused)"),
        (r"decoder\.vision_model\.head\.", "decoder attention-pooling head (unused)"),
        (r".*position_ids$", "position id buffers"),
        (r"scale_layer\.", "input normalisation (read into manifest image.mean/std)"),
        (r"bottleneck\.regularizer\.stochastic_temperature_inv$",
         "quantiser sampling temperature (inference uses argmax)"),
    ], "ta_tok")
    mean = sd["scale_layer.shift"].reshape(-1).tolist() if "scale_layer.shift" in sd else [0.5, 0.5, 0.5]
    std = sd["scale_layer.scale"].reshape(-1).tolist() if "scale_layer.scale" in sd else [0.5, 0.5, 0.5]
    info = {"args": {k: v for k, v in args.items() if k != "bottleneck"}, "regularizer": reg_args,
            "mean": mean, "std": std, "l2_normalized": l2, "stochastic": bool(reg_args.get("stochastic", False)),
            "pool_scale": int(args.get("pool_scale", 1))}
    return enc.eval(), dec.eval(), info, notes


# ---------------------------------------------------------------------------- AR-DTok (ar_dtok_lp_*.pth)
def load_ar_dtok(path: str) -> Tuple[ARDTok, dict, List[str]]:
    ck = torch_load(path)
    if not (isinstance(ck, dict) and "model" in ck and "sd" in ck["model"]):
        raise ConversionError(f"{path}: expected {{'model': {{'name', 'args', 'sd'}}}}")
    spec = ck["model"]
    args, sd = dict(spec.get("args", {})), {k: v.float() if v.is_floating_point() else v
                                             for k, v in spec["sd"].items()}
    name = spec.get("name")
    n_layer, n_head, dim = LLAMA_ABS.get(name, (None, None, None))
    n_layer, n_head, dim = args.get("n_layer", n_layer), args.get("n_head", n_head), args.get("dim", dim)
    if n_head is None:
        raise ConversionError(f"ar_dtok: unknown model name {name!r} and no n_head in args")
    if args.get("model_type", "class_cond") != "clip_cond":
        raise ConversionError(f"ar_dtok: model_type {args.get('model_type')!r}; Tar's AR-DTok is clip_cond")
    if args.get("frame_prediction"):
        raise ConversionError("ar_dtok: frame_prediction models are not supported")
    emb = _need(sd, "tok_embeddings.weight", "ar_dtok")
    if dim is None:
        dim = emb.shape[1]
    layers = _layer_count(sd, "layers.")
    if emb.shape[1] != dim or (n_layer is not None and layers != n_layer):
        raise ConversionError(f"ar_dtok: {name} means dim {dim}, {n_layer} layers; weights have {emb.shape[1]}, "
                              f"{layers}")
    kv = args.get("n_kv_head") or n_head
    hd = dim // n_head
    abs_pe = _need(sd, "abs_pe", "ar_dtok")
    codes = int(args.get("max_seq_len", 2048))
    g = int(round(math.sqrt(codes)))
    if g * g != codes:
        raise ConversionError(f"ar_dtok: max_seq_len {codes} is not a square number of codes")
    cls = int(args.get("cls_token_num", 1))
    if abs_pe.shape[1] != codes + cls - 1:
        raise ConversionError(f"ar_dtok: abs_pe has {abs_pe.shape[1]} rows, expected max_seq_len + "
                              f"cls_token_num - 1 = {codes + cls - 1}")
    cfg = ARDTokConfig(codebook_size=emb.shape[0], cond_dim=_need(sd, "clip_proj.weight", "ar_dtok").shape[1], hidden=dim,
                       layers=layers, heads=n_head, kv_heads=kv, head_dim=hd,
                       intermediate=_need(sd, "layers.0.feed_forward.w1.weight", "ar_dtok").shape[0], codes=codes,
                       max_positions=abs_pe.shape[1] + 1, rms_eps=float(args.get("norm_eps", 1e-5)))
    with no_init():
        ar = ARDTok(cfg)
    used = set()

    def take(k):
        used.add(k)
        return _need(sd, k, "ar_dtok")

    m = {"cond_proj.weight": take("clip_proj.weight"), "cond_proj.bias": take("clip_proj.bias"),
         "tok_embeddings.weight": take("tok_embeddings.weight"), "pos_embeddings.weight": torch.cat([take("abs_pe")[0], torch.zeros(1, dim)]),
         "norm.weight": take("norm.weight"), "output.weight": take("output.weight")}
    for i in range(layers):
        s, d = f"layers.{i}.", f"layers.{i}."
        q, k, v = take(s + "attention.wqkv.weight").split([n_head * hd, kv * hd, kv * hd], dim=0)
        m.update({d + "self_attn.q_proj.weight": q, d + "self_attn.k_proj.weight": k,
                  d + "self_attn.v_proj.weight": v, d + "self_attn.o_proj.weight": take(s + "attention.wo.weight"),
                  d + "input_layernorm.weight": take(s + "attention_norm.weight"),
                  d + "post_attention_layernorm.weight": take(s + "ffn_norm.weight"),
                  d + "mlp.gate_proj.weight": take(s + "feed_forward.w1.weight"),
                  d + "mlp.up_proj.weight": take(s + "feed_forward.w3.weight"),
                  d + "mlp.down_proj.weight": take(s + "feed_forward.w2.weight")})
    load_into(ar, m, "ar_dtok")
    notes = _check_used(sd, used, [(r".*kv_cache\.", "KV cache buffers"), (r"causal_mask$", "mask buffer"),
                                   (r"freqs_cis$", "unused RoPE table")], "ar_dtok")
    # abs_pe has max_seq_len + cls_token_num - 1 rows: the last code is never fed back. The bundle contract asks
    # for room for condition + all codes, so one zero row is appended; no computation ever reads it.
    notes.append("abs_pe: one unused zero row appended (manifest arDTok.maxPositions = condition + codes)")
    info = {"name": name, "args": {k: v for k, v in args.items()}, "cls_token_num": cls, "grid": g}
    return ar.eval(), info, notes


# ---------------------------------------------------------------------------- LlamaGen VQ (vq_ds16_t2i.pt)
def load_vq(path: str, grid: int, l2_norm: bool = True) -> Tuple[LlamaGenVQDecoder, List[str]]:
    ck = torch_load(path)
    sd = ck.get("model", ck) if isinstance(ck, dict) else None
    if isinstance(sd, dict) and "sd" in sd:
        sd = sd["sd"]
    if not isinstance(sd, dict) or "post_quant_conv.weight" not in sd:
        raise ConversionError(f"{path}: expected a LlamaGen VQ checkpoint {{'model': state_dict}}")
    sd = {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
    n = _layer_count(sd, "decoder.conv_blocks.")
    chans = [sd[f"decoder.conv_blocks.{j}.res.0.conv1.weight"].shape[0] for j in range(n)]  # high level first
    chans = list(reversed(chans))                                                              # level 0 first
    ch = chans[0]
    for c in chans:
        ch = math.gcd(ch, c)
    cfg = LlamaGenVQConfig(codebook_size=sd["quantize.embedding.weight"].shape[0],
                           code_dim=sd["quantize.embedding.weight"].shape[1],
                           z_channels=sd["post_quant_conv.weight"].shape[0], ch=ch, ch_mult=[c // ch for c in chans],
                           num_res_blocks=_layer_count(sd, "decoder.conv_blocks.0.res.") - 1, l2_norm=l2_norm,
                           grid=grid)
    with no_init():
        vq = LlamaGenVQDecoder(cfg)
    keep = {k: v for k, v in sd.items() if k.startswith(("decoder.", "post_quant_conv.", "quantize.embedding."))}
    kept = set(keep)
    load_into(vq, keep, "vq decoder")
    notes = _check_used(sd, kept, [(r"encoder\.", "VQ encoder (not needed to render codes)"),
                                        (r"quant_conv\.", "VQ encoder projection"),
                                        (r"quantize\.codebook_used$", "codebook usage statistics")], "vq")
    return vq.eval(), notes
