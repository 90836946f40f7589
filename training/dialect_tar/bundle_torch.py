"""Rebuild the PyTorch modules of a bundle from the bundle alone.

The exporter writes graphs without constant folding, so every ONNX initializer still carries the name of the
PyTorch parameter (or persistent buffer) it came from, prefixed by the export wrapper (`llm.`, `ar.`, `vq.`), and
`pytorch.json` holds the dataclass configs. That makes a benchmark's PyTorch-eager side run on exactly the weights
the TypeScript runtime runs, from a fresh clone, with no training checkpoint.
"""
import json
import os
from typing import Dict

import onnx
import torch
from onnx import numpy_helper

from dialect_tar.tokenizer import BPETokenizer

# Prefix each export wrapper adds to its module's parameter names (see export_bundle._LLMGraph and friends).
_GRAPH_PREFIX = {"llm": "llm.", "arDTok": "ar.", "vqDecoder": "vq.", "taTokEncoder": "", "taTokDecoder": ""}


def _initializers(path: str, prefix: str) -> Dict[str, torch.Tensor]:
    model = onnx.load(path, load_external_data=True)
    out = {}
    for init in model.graph.initializer:
        if init.name.startswith(prefix):
            out[init.name[len(prefix):]] = torch.from_numpy(numpy_helper.to_array(init).copy())
    return out


def _load(module: torch.nn.Module, weights: Dict[str, torch.Tensor], graph: str, only_prefix: str = "") -> None:
    """Copies every parameter and persistent buffer of `module` from `weights`; a missing one is an error."""
    state = module.state_dict()
    missing = []
    for name, tensor in state.items():
        source = weights.get(only_prefix + name)
        if source is None:
            missing.append(name)
            continue
        if tuple(source.shape) != tuple(tensor.shape):
            raise ValueError(f"{graph}: {name} has shape {tuple(source.shape)} in the bundle, "
                             f"{tuple(tensor.shape)} in the model")
        tensor.copy_(source)
    if missing:
        raise ValueError(f"{graph}: the bundle has no weights for {', '.join(missing[:8])}"
                         f"{' …' if len(missing) > 8 else ''} (was it exported with constant folding?)")


def load_bundle(bundle_dir: str):
    """Returns (tokenizer, llm, encoder, decoder, ardtok, vq, manifest) in eval mode."""
    from export_bundle import PYTORCH_CONFIG, build_models

    with open(os.path.join(bundle_dir, "manifest.json")) as fh:
        manifest = json.load(fh)
    config_path = os.path.join(bundle_dir, PYTORCH_CONFIG)
    if not os.path.exists(config_path):
        raise FileNotFoundError(f"{config_path} is missing: re-export the bundle with training/export_bundle.py")
    with open(config_path) as fh:
        configs = json.load(fh)
    llm, encoder, decoder, ardtok, vq = build_models(configs)
    files = manifest["files"]
    path = lambda key: os.path.join(bundle_dir, files[key])  # noqa: E731
    with torch.no_grad():
        _load(llm, _initializers(path("llm"), _GRAPH_PREFIX["llm"]), "llm")
        _load(ardtok, _initializers(path("arDTok"), _GRAPH_PREFIX["arDTok"]), "arDTok")
        # The VQ graph holds only the decoder half; the encoder half is not needed to render codes.
        vq_weights = _initializers(path("vqDecoder"), _GRAPH_PREFIX["vqDecoder"])
        vq_state = {k: v for k, v in vq.state_dict().items() if k in vq_weights}
        for name, tensor in vq_state.items():
            tensor.copy_(vq_weights[name])
        if not any(name.startswith("decoder.") for name in vq_state):
            raise ValueError("vqDecoder: the bundle has no decoder weights (was it exported with constant folding?)")
        _load(encoder, _initializers(path("taTokEncoder"), ""), "taTokEncoder")
        _load(decoder, _initializers(path("taTokDecoder"), ""), "taTokDecoder")
    tokenizer = BPETokenizer.load(path("tokenizer"))
    for module in (llm, encoder, decoder, ardtok, vq):
        module.eval()
    return tokenizer, llm, encoder, decoder, ardtok, vq, manifest
