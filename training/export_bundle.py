"""Export Dialect/Tar model objects into a `dialect-bundle/1` folder (see docs/bundle-format.md).

    from export_bundle import export_bundle
    export_bundle(out_dir, tokenizer, llm, encoder, decoder, ardtok, vq, manifest)

CLI: `training/py training/export_bundle.py --checkpoint ckpt.pt --out models/tar-shapes` where ckpt.pt is a
torch.save'd dict {"configs": {...}, "state": {...}, "manifest": {...}, "tokenizer": "<path>"} as written by
the training scripts (see `save_checkpoint`).
"""
import argparse
import json
import os
import shutil
import tempfile
from typing import Callable, Dict, Optional

import onnx
import torch
import torch.nn as nn

from dialect_tar.ar_dtok import ARDTok
from dialect_tar.compat import onnx_export_kwargs, torch_load
from dialect_tar.config import ARDTokConfig, LLMConfig, TaTokConfig, VQConfig, to_dict
from dialect_tar.llm import QwenLM
from dialect_tar.ta_tok import Codebook, TaTokDecoder, TaTokEncoder
from dialect_tar.tokenizer import BPETokenizer
from dialect_tar.vq import VQVAE

OPSET = 17
EXTERNAL_DATA_BYTES = int(1.8e9)
# Optional file of a bundle: the PyTorch configs, read only by dialect_tar.bundle_torch (the runtime ignores it).
PYTORCH_CONFIG = "pytorch.json"
FILES = {"taTokEncoder": "ta_tok_encoder.onnx", "taTokDecoder": "ta_tok_decoder.onnx", "llm": "llm.onnx",
         "arDTok": "ar_dtok.onnx", "vqDecoder": "vq_decoder.onnx", "tokenizer": "tokenizer.json"}


# ---------------------------------------------------------------------------- graph wrappers
class _LLMGraph(nn.Module):
    def __init__(self, llm: QwenLM):
        super().__init__()
        self.llm = llm

    def forward(self, input_ids, attention_mask, position_ids, *past_flat):
        past = [(past_flat[2 * i], past_flat[2 * i + 1]) for i in range(len(past_flat) // 2)]
        logits, presents = self.llm(input_ids, attention_mask, position_ids, past)
        return (logits,) + tuple(t for kv in presents for t in kv)


class _ARGraph(nn.Module):
    def __init__(self, ar: ARDTok):
        super().__init__()
        self.ar = ar

    def forward(self, input_ids, cond, attention_mask, position_ids, *past_flat):
        past = [(past_flat[2 * i], past_flat[2 * i + 1]) for i in range(len(past_flat) // 2)]
        logits, presents = self.ar(input_ids, cond, attention_mask, position_ids, past)
        return (logits,) + tuple(t for kv in presents for t in kv)


class _VQGraph(nn.Module):
    def __init__(self, vq: VQVAE):
        super().__init__()
        self.vq = vq

    def forward(self, codes):
        return self.vq.decode_codes(codes)


def _kv_names(layers: int):
    ins, outs, axes = [], [], {}
    for i in range(layers):
        for kv in ("key", "value"):
            a, b = f"past_key_values.{i}.{kv}", f"present.{i}.{kv}"
            ins.append(a)
            outs.append(b)
            axes[a] = {0: "batch", 2: "past_sequence"}
            axes[b] = {0: "batch", 2: "total_sequence"}
    return ins, outs, axes


def _export(module: nn.Module, args, path: str, input_names, output_names, dynamic_axes) -> None:
    """torch.onnx.export; graphs whose weights exceed ~1.8 GB are re-saved with one external data file."""
    module.eval()
    n_bytes = sum(p.numel() * p.element_size() for p in module.parameters())
    kw = dict(input_names=input_names, output_names=output_names, dynamic_axes=dynamic_axes,
              opset_version=OPSET,
              # No folding at export: initializers keep their PyTorch parameter names, so that
              # dialect_tar.bundle_torch can rebuild the PyTorch modules from a bundle alone (the benchmark's
              # PyTorch-eager side). onnxruntime folds the same constants when it loads the graph.
              do_constant_folding=False, **onnx_export_kwargs())
    with torch.no_grad():
        if n_bytes < EXTERNAL_DATA_BYTES:
            torch.onnx.export(module, args, path, **kw)
            return
        tmp = tempfile.mkdtemp(prefix="dialect-export-")
        try:
            tmp_path = os.path.join(tmp, "model.onnx")
            torch.onnx.export(module, args, tmp_path, **kw)
            model = onnx.load(tmp_path, load_external_data=True)
            data = os.path.basename(path) + ".data"
            if os.path.exists(os.path.join(os.path.dirname(path), data)):
                os.remove(os.path.join(os.path.dirname(path), data))
            onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                            location=data, size_threshold=1024)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------- per graph
def export_llm(llm: QwenLM, path: str) -> None:
    c = llm.cfg
    b, t, p = 2, 3, 4
    past = []
    for _ in range(c.layers):
        past += [torch.randn(b, c.kv_heads, p, c.head_dim), torch.randn(b, c.kv_heads, p, c.head_dim)]
    args = (torch.randint(0, c.vocab_size, (b, t)), torch.ones(b, p + t, dtype=torch.long),
            torch.arange(p, p + t).unsqueeze(0).expand(b, t).contiguous(), *past)
    ins, outs, axes = _kv_names(c.layers)
    axes.update({"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "total_sequence"},
                 "position_ids": {0: "batch", 1: "sequence"}, "logits": {0: "batch"}})
    _export(_LLMGraph(llm), args, path, ["input_ids", "attention_mask", "position_ids"] + ins, ["logits"] + outs,
            axes)


def export_ardtok(ar: ARDTok, path: str) -> None:
    c = ar.cfg
    b, s, nc, p = 2, 2, 3, 4
    past = []
    for _ in range(c.layers):
        past += [torch.randn(b, c.kv_heads, p, c.head_dim), torch.randn(b, c.kv_heads, p, c.head_dim)]
    args = (torch.randint(0, c.codebook_size, (b, s)), torch.randn(b, nc, c.cond_dim),
            torch.ones(b, p + nc + s, dtype=torch.long),
            torch.arange(p, p + nc + s).unsqueeze(0).expand(b, nc + s).contiguous(), *past)
    ins, outs, axes = _kv_names(c.layers)
    axes.update({"input_ids": {0: "batch", 1: "sequence"}, "cond": {0: "batch", 1: "cond_sequence"},
                 "attention_mask": {0: "batch", 1: "total_sequence"},
                 "position_ids": {0: "batch", 1: "new_sequence"}, "logits": {0: "batch"}})
    _export(_ARGraph(ar), args, path, ["input_ids", "cond", "attention_mask", "position_ids"] + ins,
            ["logits"] + outs, axes)


def export_ta_tok_encoder(enc: TaTokEncoder, path: str) -> None:
    c = enc.cfg
    args = (torch.randn(2, 3, c.input_size, c.input_size), torch.tensor([2], dtype=torch.long))
    _export(enc, args, path, ["pixels", "scale"], ["ids"], {"pixels": {0: "batch"}, "ids": {0: "batch", 1: "tokens"}})


def export_ta_tok_decoder(dec: TaTokDecoder, path: str) -> None:
    c = dec.cfg
    args = (torch.randint(0, c.codebook_size, (2, c.tokens(c.scales[-1]))),)
    _export(dec, args, path, ["ids"], ["features"],
            {"ids": {0: "batch", 1: "tokens"}, "features": {0: "batch", 1: "tokens"}})


def export_vq_decoder(vq: VQVAE, path: str) -> None:
    g = vq.cfg.grid
    args = (torch.randint(0, vq.cfg.codebook_size, (2, g * g)),)
    _export(_VQGraph(vq), args, path, ["codes"], ["pixels"], {"codes": {0: "batch"}, "pixels": {0: "batch"}})


# ---------------------------------------------------------------------------- manifest
def build_manifest(tok: BPETokenizer, llm_cfg: LLMConfig, ta_cfg: TaTokConfig, ar_cfg: ARDTokConfig,
                   vq_cfg: VQConfig, *, name: str, version: str, description: str, image_template: str,
                   system: Optional[str] = "You are a helpful assistant.", experimental=(),
                   mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), cfg_scale: float = 3.0, default_scale: int = 2,
                   max_new_tokens: int = 128) -> dict:
    K = ta_cfg.codebook_size
    tid = tok.token_id
    assert all(tid(f"<I{k}>") == tid("<I0>") + k for k in range(K)), "image tokens must be contiguous"
    return {
        "format": "dialect-bundle/1",
        "name": name, "version": version, "description": description, "experimental": list(experimental),
        "files": dict(FILES),
        "image": {"inputSize": ta_cfg.input_size, "mean": list(mean), "std": list(std),
                  "outputSize": vq_cfg.output_size, "maxInputPixels": 16777216},
        "tokens": {"imStart": tid("<im_start>"), "imEnd": tid("<im_end>"),
                   "scaleTokens": [tid("<S0>"), tid("<S1>"), tid("<S2>")],
                   "imageBase": tid("<I0>"), "imageCount": K,
                   "eos": [tid("<|im_end|>"), tid("<|endoftext|>")], "pad": tid("<|endoftext|>")},
        "scales": [{"scale": s, "grid": ta_cfg.pooled_grid(s), "tokens": ta_cfg.tokens(s)} for s in ta_cfg.scales],
        "defaultScale": default_scale,
        "llm": {"layers": llm_cfg.layers, "kvHeads": llm_cfg.kv_heads, "headDim": llm_cfg.head_dim,
                "vocabSize": llm_cfg.vocab_size, "maxPositions": llm_cfg.max_positions,
                "rope": {"theta": llm_cfg.rope_theta}, "dtype": "float32"},
        "taTok": {"codebookSize": K, "dtype": "float32"},
        "arDTok": {"layers": ar_cfg.layers, "kvHeads": ar_cfg.kv_heads, "headDim": ar_cfg.head_dim,
                   "codebookSize": ar_cfg.codebook_size, "condDim": ar_cfg.cond_dim, "codes": ar_cfg.codes,
                   "maxPositions": ar_cfg.max_positions, "dtype": "float32"},
        "vq": {"grid": vq_cfg.grid, "codebookSize": vq_cfg.codebook_size, "outputSize": vq_cfg.output_size,
               "dtype": "float32"},
        "chat": {"system": system, "turnStart": "<|im_start|>{role}\n", "turnEnd": "<|im_end|>\n"},
        "templates": {"image": image_template, "understand": "{image}\n{prompt}", "generate": "{prompt}",
                      "edit": "{image}\n{prompt}", "imageAnswerPrefix": "<im_start><S{k}>"},
        "sampling": {
            "text": {"temperature": 0, "topK": 0, "topP": 1, "repetitionPenalty": 1, "maxNewTokens": max_new_tokens},
            "image": {"temperature": 1, "topK": 0, "topP": 1},
            "detok": {"temperature": 1, "topK": 0, "topP": 1, "cfgScale": cfg_scale},
        },
    }


def export_bundle(out_dir: str, tok: BPETokenizer, llm: QwenLM, encoder: TaTokEncoder, decoder: TaTokDecoder,
                  ardtok: ARDTok, vq: VQVAE, manifest: dict) -> None:
    os.makedirs(out_dir, exist_ok=True)
    f = manifest["files"]
    export_ta_tok_encoder(encoder, os.path.join(out_dir, f["taTokEncoder"]))
    export_ta_tok_decoder(decoder, os.path.join(out_dir, f["taTokDecoder"]))
    export_llm(llm, os.path.join(out_dir, f["llm"]))
    export_ardtok(ardtok, os.path.join(out_dir, f["arDTok"]))
    export_vq_decoder(vq, os.path.join(out_dir, f["vqDecoder"]))
    tok.save(os.path.join(out_dir, f["tokenizer"]))
    with open(os.path.join(out_dir, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=2)
        fh.write("\n")
    with open(os.path.join(out_dir, PYTORCH_CONFIG), "w") as fh:
        json.dump(model_configs(llm, encoder, ardtok, vq), fh, indent=2)
        fh.write("\n")


def derive_bundle(source: str, out_dir: str, manifest: dict, graphs: Dict[str, Callable[[str], None]]) -> None:
    """A copy of the bundle `source` with some graphs exported anew and another manifest, written to `out_dir`
    (replaced) through a temporary folder: graphs maps a manifest "files" key to a function that exports that
    graph to the path it is given (the continuation scripts: a retrained LLM, a new de-tokenizer)."""
    tmp = out_dir.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    for key, export in graphs.items():
        export(os.path.join(tmp, manifest["files"][key]))
    with open(os.path.join(tmp, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=2)
        fh.write("\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.rename(tmp, out_dir)


def model_configs(llm: QwenLM, encoder: TaTokEncoder, ardtok: ARDTok, vq: VQVAE) -> Dict[str, dict]:
    """The dataclass configs that `build_models` takes, as plain JSON."""
    return {"llm": to_dict(llm.cfg), "taTok": to_dict(encoder.cfg), "arDTok": to_dict(ardtok.cfg),
            "vq": to_dict(vq.cfg)}


# ---------------------------------------------------------------------------- checkpoints
def build_models(configs: Dict[str, dict]):
    llm_cfg, ta_cfg = LLMConfig(**configs["llm"]), TaTokConfig(**configs["taTok"])
    ar_cfg, vq_cfg = ARDTokConfig(**configs["arDTok"]), VQConfig(**configs["vq"])
    codebook = Codebook(ta_cfg.codebook_size, ta_cfg.code_dim)
    return (QwenLM(llm_cfg), TaTokEncoder(ta_cfg, codebook), TaTokDecoder(ta_cfg, codebook), ARDTok(ar_cfg),
            VQVAE(vq_cfg))


def save_checkpoint(path: str, llm, encoder, decoder, ardtok, vq, manifest: dict, tokenizer_path: str) -> None:
    torch.save({"configs": model_configs(llm, encoder, ardtok, vq),
                "state": {"llm": llm.state_dict(), "encoder": encoder.state_dict(), "decoder": decoder.state_dict(),
                          "arDTok": ardtok.state_dict(), "vq": vq.state_dict()},
                "manifest": manifest, "tokenizer": tokenizer_path}, path)


def load_checkpoint(path: str):
    ck = torch_load(path)
    llm, enc, dec, ar, vq = build_models(ck["configs"])
    st = ck["state"]
    llm.load_state_dict(st["llm"])
    enc.load_state_dict(st["encoder"])
    dec.load_state_dict(st["decoder"])
    ar.load_state_dict(st["arDTok"])
    vq.load_state_dict(st["vq"])
    return BPETokenizer.load(ck["tokenizer"]), llm, enc, dec, ar, vq, ck["manifest"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(2)
    tok, llm, enc, dec, ar, vq, manifest = load_checkpoint(a.checkpoint)
    export_bundle(a.out, tok, llm, enc, dec, ar, vq, manifest)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
