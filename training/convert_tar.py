"""Convert the released Tar checkpoints into a `dialect-bundle/1` folder (docs/released-models.md).

    training/py training/convert_tar.py \
        --llm ckpt/Tar-1.5B \                     # HuggingFace folder: config.json, model*.safetensors,
                                                  #   tokenizer.json, added_tokens.json, generation_config.json
        --ta-tok ckpt/TA-Tok/ta_tok.pth \          # {"model": {"args", "sd"}}
        --ar-dtok ckpt/TA-Tok/ar_dtok_lp_256px.pth \  # {"model": {"name", "args", "sd"}} (256/512/1024 px)
        --vq ckpt/llamagen/vq_ds16_t2i.pt \        # LlamaGen VQ-16 {"model": state_dict}
        --out models/tar-1.5b-256px [--name tar-1.5b-256px]

What is read from the checkpoint (never assumed): every dimension, layer and head count (heads of the SigLIP
teacher and of LlamaGen's named models from their published configs), the token ids (<|im_start|>, <|im_end|>,
<im_start>, <im_end>, <S0>–<S2>, <I0>… and their count, eos and pad from generation_config.json), the text sampling
defaults (generation_config.json), image mean/std (TA-Tok's scale layer), the pooled grids (from the position
grid), the code count and position table (AR-DTok args and abs_pe), the VQ decoder's levels and channels.
What comes from Tar's reference inference code because no checkpoint carries it: the system message, the ChatML
turn markers, bare image tokens in the user turn, `<im_start><S{k}>` as the image-answer prefix, image-token
sampling (temperature 1, top-k 1200, top-p 0.95), AR-DTok CFG 4.0 with all-zero features as the unconditional
branch. Quantisation is argmax (the released quantiser samples unless set_vq_eval_deterministic is called).
"""
import argparse
import gc
import hashlib
import json
import os
import re
import shutil
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_bundle as eb  # noqa: E402
from convert.released import (ConversionError, load_ar_dtok, load_llm, load_ta_tok, load_vq,  # noqa: E402
                              read_json)

SYSTEM = "You are a helpful assistant."          # t2i_inference.py / i2t_inference.py
IMAGE_SAMPLING = {"temperature": 1.0, "topK": 1200, "topP": 0.95}   # t2i_inference.py T2IConfig
CFG_SCALE = 4.0                                   # t2i_inference.py T2IConfig.cfg_scale
FORMAT_VERSION = "1"


def tokenizer_ids(folder: str) -> dict:
    """content → id of every added token, from tokenizer.json, cross-checked with added_tokens.json."""
    tj = read_json(os.path.join(folder, "tokenizer.json"))
    ids = {a["content"]: a["id"] for a in tj.get("added_tokens", [])}
    extra = read_json(os.path.join(folder, "added_tokens.json"), required=False) or {}
    for content, i in extra.items():
        if content in ids and ids[content] != i:
            raise ConversionError(f"{content}: id {ids[content]} in tokenizer.json, {i} in added_tokens.json")
        if content not in ids:
            raise ConversionError(f"{content} (id {i}) is in added_tokens.json but not in tokenizer.json's "
                                  "added_tokens; the runtime reads tokenizer.json only")
    return ids


def image_tokens(ids: dict) -> tuple:
    pat = re.compile(r"<I(\d+)>$")
    codes = {int(m.group(1)): i for c, i in ids.items() for m in [pat.match(c)] if m}
    if not codes:
        raise ConversionError("the tokenizer has no <I{k}> image tokens")
    k = max(codes) + 1
    base = codes.get(0)
    if sorted(codes) != list(range(k)) or any(codes[c] != base + c for c in range(k)):
        raise ConversionError("image tokens <I0>…<I{K-1}> are not contiguous ids")
    return base, k


def build_manifest(args, llm_cfg, hf: dict, gen: dict, ids: dict, enc, ar, vq, ta_info) -> dict:
    def tid(c):
        if c not in ids:
            raise ConversionError(f"the tokenizer has no added token {c}")
        return ids[c]

    base, count = image_tokens(ids)
    if count != enc.cfg.codebook_size:
        raise ConversionError(f"{count} image tokens in the tokenizer, TA-Tok codebook has {enc.cfg.codebook_size}")
    if base + count > llm_cfg.vocab_size:
        raise ConversionError(f"image tokens end at {base + count}, LLM vocabulary is {llm_cfg.vocab_size}")
    eos = gen.get("eos_token_id", hf.get("eos_token_id"))
    eos = [eos] if isinstance(eos, int) else list(eos or [])
    if tid("<|im_end|>") not in eos:
        eos = [tid("<|im_end|>")] + eos
    pad = gen.get("pad_token_id", hf.get("pad_token_id"))
    if pad is None:
        pad = tid("<|endoftext|>")
    text = {"temperature": float(gen.get("temperature", 1.0)) if gen.get("do_sample", False) else 0,
            "topK": int(gen.get("top_k", 0) or 0), "topP": float(gen.get("top_p", 1.0)),
            "repetitionPenalty": float(gen.get("repetition_penalty", 1.0)),
            "maxNewTokens": int(gen.get("max_new_tokens", args.max_new_tokens))}
    t = enc.cfg
    scales = [{"scale": s, "grid": t.pooled_grid(s), "tokens": t.tokens(s)} for s in t.scales]
    if max(s["tokens"] for s in scales) + ar.cfg.codes > ar.cfg.max_positions:
        raise ConversionError(f"AR-DTok positions ({ar.cfg.max_positions}) cannot hold {scales[0]['tokens']} "
                              f"condition tokens and {ar.cfg.codes} codes")
    if ar.cfg.codebook_size != vq.cfg.codebook_size:
        raise ConversionError(f"AR-DTok vocabulary {ar.cfg.codebook_size} != VQ codebook {vq.cfg.codebook_size}")
    if ar.cfg.cond_dim != t.feat_dim:
        raise ConversionError(f"AR-DTok condition dim {ar.cfg.cond_dim} != TA-Tok feature dim {t.feat_dim}")
    default_scale = args.default_scale or ta_info["pool_scale"]
    return {
        "format": "dialect-bundle/1",
        "name": args.name, "version": args.version,
        "description": args.description or (
            f"Tar {os.path.basename(os.path.normpath(args.llm))} with TA-Tok, "
            f"{os.path.basename(args.ar_dtok)} and LlamaGen VQ-16 ({vq.cfg.output_size} px), converted by "
            "training/convert_tar.py"),
        "experimental": ["edit"],
        "files": dict(eb.FILES),
        "image": {"inputSize": t.input_size, "mean": [float(x) for x in ta_info["mean"]],
                  "std": [float(x) for x in ta_info["std"]], "outputSize": vq.cfg.output_size,
                  "maxInputPixels": 16777216},
        "tokens": {"imStart": tid("<im_start>"), "imEnd": tid("<im_end>"),
                   "scaleTokens": [tid("<S0>"), tid("<S1>"), tid("<S2>")],
                   "imageBase": base, "imageCount": count, "eos": eos, "pad": pad},
        "scales": scales,
        "defaultScale": default_scale,
        "llm": {"layers": llm_cfg.layers, "kvHeads": llm_cfg.kv_heads, "headDim": llm_cfg.head_dim,
                "vocabSize": llm_cfg.vocab_size, "maxPositions": llm_cfg.max_positions,
                "rope": {"theta": llm_cfg.rope_theta}, "dtype": "float32"},
        "taTok": {"codebookSize": count, "dtype": "float32"},
        "arDTok": {"layers": ar.cfg.layers, "kvHeads": ar.cfg.kv_heads, "headDim": ar.cfg.head_dim,
                   "codebookSize": ar.cfg.codebook_size, "condDim": ar.cfg.cond_dim, "codes": ar.cfg.codes,
                   "maxPositions": ar.cfg.max_positions, "dtype": "float32"},
        "vq": {"grid": vq.cfg.grid, "codebookSize": vq.cfg.codebook_size, "outputSize": vq.cfg.output_size,
               "dtype": "float32"},
        "chat": {"system": SYSTEM, "turnStart": "<|im_start|>{role}\n", "turnEnd": "<|im_end|>\n"},
        "templates": {"image": "{tokens}", "understand": "{image}\n{prompt}", "generate": "{prompt}",
                      "edit": "{image}\n{prompt}", "imageAnswerPrefix": "<im_start><S{k}>"},
        "sampling": {"text": text, "image": dict(IMAGE_SAMPLING),
                     "detok": {"temperature": 1.0, "topK": 0, "topP": 1.0, "cfgScale": args.cfg_scale}},
    }


def check_chat_template(folder: str) -> str:
    tc = read_json(os.path.join(folder, "tokenizer_config.json"), required=False) or {}
    tpl = tc.get("chat_template")
    if not tpl:
        return "tokenizer_config.json has no chat_template: ChatML assumed"
    if "<|im_start|>" not in tpl or "<|im_end|>" not in tpl:
        raise ConversionError("the chat template is not ChatML (<|im_start|>/<|im_end|>)")
    return "chat_template is ChatML"


FP16_KEYS = {"llm": ("llm", "llm"), "arDTok": ("arDTok", "arDTok"), "vq": ("vqDecoder", "vq"),
             "taTok": (("taTokEncoder", "taTokDecoder"), "taTok")}


def to_float16(bundle_dir: str, manifest: dict, parts) -> None:
    """Rewrites the graphs of `parts` (manifest sections: llm, arDTok, vq, taTok) as float16 in place
    (convert/fp16.py: matrix products and weights in float16, norms/softmax/RoPE in float32) and sets their
    manifest dtype."""
    from convert.fp16 import convert_file
    for part in parts:
        keys, section = FP16_KEYS[part]
        for key in (keys if isinstance(keys, tuple) else (keys,)):
            convert_file(os.path.join(bundle_dir, manifest["files"][key]))
        manifest[section]["dtype"] = "float16"
    record = os.path.join(bundle_dir, "conversion.json")
    if os.path.exists(record):
        with open(record) as fh:
            rec = json.load(fh)
        rec["float16"] = {"parts": list(parts), "pass": "training/convert/fp16.py (norms, softmax, RoPE, l2 in float32)"}
        with open(record, "w") as fh:
            json.dump(rec, fh, indent=2)
            fh.write("\n")


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


def convert(a) -> dict:
    t0 = time.time()
    log = lambda *x: print(f"[{time.time() - t0:7.1f}s]", *x, flush=True)  # noqa: E731
    os.makedirs(a.out, exist_ok=True)
    files = eb.FILES
    record = {"converter": "training/convert_tar.py", "sources": {}, "ignored": {}}

    log("TA-Tok", a.ta_tok)
    enc, dec, ta_info, notes = load_ta_tok(a.ta_tok, a.teacher_config, a.ta_tok_decoder_heads)
    record["ignored"]["ta_tok"] = notes
    log("AR-DTok", a.ar_dtok)
    ar, ar_info, notes = load_ar_dtok(a.ar_dtok)
    record["ignored"]["ar_dtok"] = notes
    log("VQ", a.vq)
    vq, notes = load_vq(a.vq, ar_info["grid"], not a.vq_no_l2_norm)
    record["ignored"]["vq"] = notes
    log("LLM", a.llm)
    llm, hf, notes = load_llm(a.llm)
    record["ignored"]["llm"] = notes
    gen = read_json(os.path.join(a.llm, "generation_config.json"), required=False) or {}
    ids = tokenizer_ids(a.llm)
    record["chatTemplate"] = check_chat_template(a.llm)
    manifest = build_manifest(a, llm.cfg, hf, gen, ids, enc, ar, vq, ta_info)
    record["taTok"] = {"l2_normalized": ta_info["l2_normalized"], "stochastic": ta_info["stochastic"],
                       "quantisation": "argmax (deterministic) in the bundle"}
    record["arDTok"] = {"name": ar_info["name"], "cls_token_num": ar_info["cls_token_num"]}
    fp16_parts = (["llm", "arDTok", "vq"] if a.dtype == "float16" else []) + \
        (["taTok"] if a.ta_tok_dtype == "float16" else [])
    if fp16_parts and not a.skip_export:
        record["float16"] = {"parts": fp16_parts, "pass": "training/convert/fp16.py (norms, softmax, RoPE, l2 in float32)"}

    if not a.skip_export:
        log("export ta_tok_encoder")
        eb.export_ta_tok_encoder(enc, os.path.join(a.out, files["taTokEncoder"]))
        log("export ta_tok_decoder")
        eb.export_ta_tok_decoder(dec, os.path.join(a.out, files["taTokDecoder"]))
        log("export ar_dtok")
        eb.export_ardtok(ar, os.path.join(a.out, files["arDTok"]))
        log("export vq_decoder")
        eb.export_vq_decoder(vq, os.path.join(a.out, files["vqDecoder"]))
        log("export llm")
        eb.export_llm(llm, os.path.join(a.out, files["llm"]))
        if fp16_parts:
            log("float16:", ", ".join(fp16_parts))
            to_float16(a.out, manifest, fp16_parts)
    shutil.copyfile(os.path.join(a.llm, "tokenizer.json"), os.path.join(a.out, files["tokenizer"]))
    with open(os.path.join(a.out, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=2)
        fh.write("\n")
    for key, path in (("llm", a.llm), ("taTok", a.ta_tok), ("arDTok", a.ar_dtok), ("vq", a.vq)):
        src = {"path": os.path.basename(os.path.normpath(path))}
        if a.hash and os.path.isfile(path):
            src["sha256"] = _sha256(path)
        record["sources"][key] = src
    with open(os.path.join(a.out, "conversion.json"), "w") as fh:
        json.dump(record, fh, indent=2)
        fh.write("\n")
    log("wrote", a.out)
    return {"manifest": manifest, "llm": llm, "encoder": enc, "decoder": dec, "ardtok": ar, "vq": vq}


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llm", required=True, help="HuggingFace folder of Tar-1.5B / Tar-7B")
    ap.add_argument("--ta-tok", required=True, help="ta_tok.pth")
    ap.add_argument("--ar-dtok", required=True, help="ar_dtok_lp_{256,512,1024}px.pth")
    ap.add_argument("--vq", required=True, help="LlamaGen vq_ds16_t2i.pt")
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", default="tar-released")
    ap.add_argument("--version", default="1.0.0")
    ap.add_argument("--description", default=None)
    ap.add_argument("--teacher-config", default=None,
                    help="config.json (or its folder) of TA-Tok's SigLIP teacher when it is not "
                         "google/siglip2-so400m-patch14-384")
    ap.add_argument("--ta-tok-decoder-heads", type=int, default=12,
                    help="heads of TA-Tok's Siglip2 decoder (transformers' Siglip2VisionConfig default: 12)")
    ap.add_argument("--vq-no-l2-norm", action="store_true",
                    help="the VQ codebook is not l2-normalised (LlamaGen's default codebook_l2_norm is true)")
    ap.add_argument("--dtype", choices=["float32", "float16"], default="float32",
                    help="LLM, AR-DTok and VQ graphs (float16 for GPUs: half the memory and decode traffic)")
    ap.add_argument("--ta-tok-dtype", choices=["float32", "float16"], default="float32",
                    help="TA-Tok graphs (float32 keeps the encoder's argmax over 65,536 codes exact)")
    ap.add_argument("--cfg-scale", type=float, default=CFG_SCALE)
    ap.add_argument("--default-scale", type=int, default=None, help="default pool scale (default: TA-Tok args)")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--hash", action="store_true", help="record sha256 of the source .pth files")
    ap.add_argument("--skip-export", action="store_true", help="check and write the manifest only")
    ap.add_argument("--threads", type=int, default=2)
    return ap


def main(argv=None):
    a = parser().parse_args(argv)
    torch.set_num_threads(a.threads)
    try:
        with torch.no_grad():
            convert(a)
    except ConversionError as e:
        print(f"convert_tar: {e}", file=sys.stderr)
        sys.exit(2)
    gc.collect()


if __name__ == "__main__":
    main()
