"""Dataclass configs. The same modules serve the miniature and (via conversion) the released checkpoints."""
from dataclasses import dataclass, field, asdict
from typing import List, Optional


@dataclass
class LLMConfig:
    vocab_size: int
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 16
    intermediate: int = 128
    rope_theta: float = 10000.0
    rms_eps: float = 1e-6
    tie_embeddings: bool = False
    max_positions: int = 1024
    qkv_bias: bool = True


@dataclass
class TaTokConfig:
    codebook_size: int              # K, number of image tokens
    code_dim: int                   # dimension of the codebook (= LLM hidden for Tar: rows of its text embedding)
    input_size: int = 64            # pixel input side (image.inputSize)
    encoder_size: int = 72          # ViT's own input side; bilinear resize in-graph when != input_size
    patch: int = 8
    width: int = 64
    layers: int = 3
    heads: int = 4
    mlp: int = 128
    select_layer: int = -2          # hidden_states index (HF convention: 0 = embeddings, -1 = last layer)
    scales: List[int] = field(default_factory=lambda: [1, 2, 3])
    pool_mode: str = "stride"       # "stride" (released Tar) | "adaptive" (covers the whole grid) | "nested" (see pooling_matrix)
    ln_eps: float = 1e-6
    # decoder (patch 1 ViT over the pooled grid)
    dec_width: int = 64
    dec_layers: int = 2
    dec_heads: int = 4
    dec_mlp: int = 128
    dec_pos_grid: int = 9           # side of the decoder's learned position grid (resized to p x p)
    feat_dim: int = 64              # output feature dim (= AR-DTok condDim)

    @property
    def grid(self) -> int:
        return self.encoder_size // self.patch

    def pooled_grid(self, scale: int) -> int:
        return self.grid // scale

    def tokens(self, scale: int) -> int:
        return self.pooled_grid(scale) ** 2


@dataclass
class ARDTokConfig:
    codebook_size: int              # VQ codebook size (vocab of the AR model)
    cond_dim: int = 64
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 4
    head_dim: int = 16
    intermediate: int = 128
    codes: int = 64                 # number of VQ codes generated (grid^2)
    max_positions: int = 145        # max cond tokens + codes
    rms_eps: float = 1e-5


@dataclass
class VQConfig:
    codebook_size: int = 64
    code_dim: int = 16
    grid: int = 8
    output_size: int = 64
    channels: List[int] = field(default_factory=lambda: [16, 32, 32])  # per resolution level, high→low res


def to_dict(cfg) -> dict:
    return asdict(cfg)
