"""Dialect modules for the parts of the released Tar stack that the miniature's modules do not cover.

* `LlamaGenVQDecoder`: the decoder half of LlamaGen's VQ tokenizer (VQ-16, `vq_ds16_t2i.pt`), with parameter names
  equal to the checkpoint's (`quantize.embedding`, `post_quant_conv`, `decoder.*`), so that loading is 1:1. The
  graph maps codes to pixels in [0, 1] (LlamaGen decodes to [-1, 1]; Tar then applies x·0.5 + 0.5).
* `PlainCodebook` / `L2TaTokEncoder`: TA-Tok's quantiser when the checkpoint says `l2_normalized: false`
  (nearest codebook entry in L2). With `l2_normalized: true`, the released setting, the miniature's
  `Codebook`/`TaTokEncoder` are used unchanged (cosine argmax = L2 argmin of normalised vectors).
"""
from dataclasses import dataclass, field
from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F

from dialect_tar.ta_tok import Codebook, TaTokEncoder


# ---------------------------------------------------------------------------- LlamaGen VQ decoder
@dataclass
class LlamaGenVQConfig:
    codebook_size: int = 16384
    code_dim: int = 8               # codebook_embed_dim
    z_channels: int = 256
    ch: int = 128
    ch_mult: List[int] = field(default_factory=lambda: [1, 1, 2, 2, 4])
    num_res_blocks: int = 2
    l2_norm: bool = True            # codebook_l2_norm
    grid: int = 16                  # codes per side (sqrt of the AR-DTok's code count)
    groups: int = 32                # GroupNorm groups (LlamaGen: 32, eps 1e-6)

    @property
    def output_size(self) -> int:
        return self.grid * 2 ** (len(self.ch_mult) - 1)


def _norm(c: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, c, eps=1e-6, affine=True)


class _Res(nn.Module):
    def __init__(self, cin: int, cout: int, groups: int):
        super().__init__()
        self.norm1 = _norm(cin, groups)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = _norm(cout, groups)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class _Attn(nn.Module):
    """Single-head spatial self-attention with 1×1 convolutions (VQGAN style)."""

    def __init__(self, c: int, groups: int):
        super().__init__()
        self.norm = _norm(c, groups)
        self.q = nn.Conv2d(c, c, 1)
        self.k = nn.Conv2d(c, c, 1)
        self.v = nn.Conv2d(c, c, 1)
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, x):
        b, c, hh, ww = x.shape
        h = self.norm(x)
        q = self.q(h).reshape(b, c, hh * ww).transpose(1, 2)         # [B, HW, C]
        k = self.k(h).reshape(b, c, hh * ww)                         # [B, C, HW]
        v = self.v(h).reshape(b, c, hh * ww)
        a = torch.softmax(torch.bmm(q, k) * (c ** -0.5), dim=2)      # [B, HWq, HWk]
        o = torch.bmm(v, a.transpose(1, 2)).reshape(b, c, hh, ww)
        return x + self.proj_out(o)


class _Up(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Level(nn.Module):
    def __init__(self, res, attn, up):
        super().__init__()
        self.res = nn.ModuleList(res)
        self.attn = nn.ModuleList(attn)
        if up is not None:
            self.upsample = up


class _Decoder(nn.Module):
    def __init__(self, cfg: LlamaGenVQConfig):
        super().__init__()
        g, n = cfg.groups, len(cfg.ch_mult)
        c = cfg.ch * cfg.ch_mult[-1]
        self.conv_in = nn.Conv2d(cfg.z_channels, c, 3, padding=1)
        self.mid = nn.ModuleList([_Res(c, c, g), _Attn(c, g), _Res(c, c, g)])
        levels = []
        for i in reversed(range(n)):
            cout = cfg.ch * cfg.ch_mult[i]
            res, attn = [], []
            for _ in range(cfg.num_res_blocks + 1):
                res.append(_Res(c, cout, g))
                c = cout
                if i == n - 1:
                    attn.append(_Attn(c, g))
            levels.append(_Level(res, attn, _Up(c) if i != 0 else None))
        self.conv_blocks = nn.ModuleList(levels)
        self.norm_out = _norm(c, g)
        self.conv_out = nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, z):
        h = self.conv_in(z)
        for m in self.mid:
            h = m(h)
        for lv in self.conv_blocks:
            for j, r in enumerate(lv.res):
                h = r(h)
                if len(lv.attn) > 0:
                    h = lv.attn[j](h)
            if hasattr(lv, "upsample"):
                h = lv.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class _Quantize(nn.Module):
    def __init__(self, cfg: LlamaGenVQConfig):
        super().__init__()
        self.embedding = nn.Embedding(cfg.codebook_size, cfg.code_dim)


class LlamaGenVQDecoder(nn.Module):
    """codes [B, G²] → pixels [B, 3, H, H] in [0, 1]; the `vq` object export_bundle.export_vq_decoder expects."""

    def __init__(self, cfg: LlamaGenVQConfig):
        super().__init__()
        self.cfg = cfg
        self.quantize = _Quantize(cfg)
        self.post_quant_conv = nn.Conv2d(cfg.code_dim, cfg.z_channels, 1)
        self.decoder = _Decoder(cfg)

    def decode_codes(self, codes):
        e = self.quantize.embedding.weight
        if self.cfg.l2_norm:
            e = F.normalize(e, p=2, dim=-1)
        g = self.cfg.grid
        z = F.embedding(codes, e).transpose(1, 2).reshape(codes.shape[0], self.cfg.code_dim, g, g)
        x = self.decoder(self.post_quant_conv(z))
        return x * 0.5 + 0.5


# ---------------------------------------------------------------------------- TA-Tok without l2 normalisation
class PlainCodebook(Codebook):
    """codebook = Linear(E), not normalised (SimVQ with l2_normalized: false)."""

    def forward(self):
        return self.codebook_proj(self.codebook_embed)


class L2TaTokEncoder(TaTokEncoder):
    """TA-Tok encoder whose quantiser picks the nearest codebook entry in L2 (unnormalised)."""

    def forward(self, pixels, scale):
        x = self.features(pixels)
        si = (scale - 1).reshape(())
        rows = torch.nonzero(self.pool_valid[si]).squeeze(1)
        x = torch.matmul(self.pool[si].index_select(0, rows), x)
        z = self.in_linear(self.encode_task_layer(x))
        e = self.codebook()
        d = (e * e).sum(-1) - 2.0 * torch.matmul(z, e.t())        # |z|² is constant per row
        return d.argmin(-1)
