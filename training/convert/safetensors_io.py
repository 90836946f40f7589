"""A small reader and writer of the safetensors format (no `safetensors` package needed).

File layout: 8-byte little-endian header length N, N bytes of JSON header
`{name: {"dtype": "BF16"|"F16"|"F32"|..., "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}}`,
then the raw little-endian tensor bytes (offsets relative to the end of the header). BF16 has no numpy dtype: it is
read as uint16 and widened to float32 exactly (bf16 is the upper half of a float32).
"""
import json
import os
import struct
from typing import Dict, Iterator, Optional, Tuple

import numpy as np
import torch

_NP = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
       "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def read_header(path: str) -> Tuple[dict, int]:
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path}: not a safetensors file (shorter than 8 bytes)")
        (n,) = struct.unpack("<Q", raw)
        if n > 100_000_000:
            raise ValueError(f"{path}: not a safetensors file (header length {n})")
        header = json.loads(fh.read(n).decode("utf-8"))
    return header, 8 + n


def _to_tensor(buf: memoryview, dtype: str, shape) -> torch.Tensor:
    if dtype == "BF16":
        u16 = np.frombuffer(buf, dtype="<u2")
        arr = (u16.astype(np.uint32) << 16).view(np.float32)
    elif dtype in _NP:
        arr = np.frombuffer(buf, dtype=np.dtype(_NP[dtype]).newbyteorder("<")).astype(_NP[dtype])
    else:
        raise ValueError(f"unsupported safetensors dtype {dtype}")
    return torch.from_numpy(arr.reshape(shape).copy())


def iter_tensors(path: str, keep=None) -> Iterator[Tuple[str, str, torch.Tensor]]:
    """Yields (name, stored dtype, tensor); float types come back as float32 except F16 (kept) — callers cast.
    `keep(name)` filters before reading."""
    header, start = read_header(path)
    with open(path, "rb") as fh:
        for name, info in header.items():
            if name == "__metadata__" or (keep is not None and not keep(name)):
                continue
            b, e = info["data_offsets"]
            fh.seek(start + b)
            data = fh.read(e - b)
            if len(data) != e - b:
                raise ValueError(f"{path}: tensor {name} is truncated")
            yield name, info["dtype"], _to_tensor(memoryview(data), info["dtype"], info["shape"])


def load_folder(folder: str, keep=None, dtype: torch.dtype = torch.float32) -> Dict[str, torch.Tensor]:
    """All tensors of a HuggingFace folder: model.safetensors, or the shards named by model.safetensors.index.json.
    Floating tensors are cast to `dtype`."""
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as fh:
            files = sorted(set(json.load(fh)["weight_map"].values()))
    elif os.path.exists(os.path.join(folder, "model.safetensors")):
        files = ["model.safetensors"]
    else:
        raise FileNotFoundError(f"{folder} has neither model.safetensors nor model.safetensors.index.json "
                                "(only the safetensors format is read; convert .bin checkpoints first)")
    out: Dict[str, torch.Tensor] = {}
    for f in files:
        for name, _, t in iter_tensors(os.path.join(folder, f), keep):
            if name in out:
                raise ValueError(f"{folder}: tensor {name} appears in two shards")
            out[name] = t.to(dtype) if t.is_floating_point() else t
    return out


def _bf16_bytes(t: torch.Tensor) -> bytes:
    """float32 → bf16 with round-to-nearest-even (what torch's .bfloat16() does)."""
    u = t.detach().float().contiguous().numpy().view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype("<u2").tobytes()


def save_file(tensors: Dict[str, torch.Tensor], path: str, dtype: str = "F32",
              metadata: Optional[dict] = None) -> None:
    """Writes tensors (floats stored as `dtype`: F32, F16 or BF16) in safetensors layout, names sorted."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.is_floating_point():
            if dtype == "BF16":
                data = _bf16_bytes(t)
            else:
                data = t.numpy().astype("<f4" if dtype == "F32" else "<f2").tobytes()
            dt = dtype
        elif t.dtype == torch.int64:
            data, dt = t.numpy().astype("<i8").tobytes(), "I64"
        else:
            raise ValueError(f"{name}: unsupported dtype {t.dtype}")
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(hj)))
        fh.write(hj)
        for b in blobs:
            fh.write(b)


def bf16_round(t: torch.Tensor) -> torch.Tensor:
    """The float32 value a tensor has after a round trip through bf16."""
    u16 = np.frombuffer(_bf16_bytes(t), dtype="<u2")
    return torch.from_numpy((u16.astype(np.uint32) << 16).view(np.float32).reshape(t.shape).copy())
