"""Shared building blocks. Everything here exports to ONNX opset 17 with dynamic batch / sequence / past axes."""
import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

NEG = -1e9  # never -inf: fully masked rows (left padding) would give NaN


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


class SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def rotate_half(x):
    d = x.shape[-1] // 2
    return torch.cat((-x[..., d:], x[..., :d]), dim=-1)


def rope_cos_sin(position_ids: torch.Tensor, head_dim: int, theta: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """position_ids [B, T] → cos, sin [B, 1, T, Dh] (HF Qwen2 layout: frequencies repeated over both halves)."""
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=position_ids.device) / head_dim))
    freqs = position_ids.to(torch.float32).unsqueeze(-1) * inv  # [B, T, Dh/2]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().unsqueeze(1), emb.sin().unsqueeze(1)


def decoder_mask(attention_mask: torch.Tensor, t_new: torch.Tensor) -> torch.Tensor:
    """attention_mask [B, P+T] (1 = real) → additive mask [B, 1, T, P+T]: causal over past+new, left padding."""
    total = attention_mask.shape[1]
    k_idx = torch.arange(total, device=attention_mask.device)                    # [P+T]
    q_idx = torch.arange(t_new, device=attention_mask.device) + (total - t_new)  # [T]
    causal = k_idx.unsqueeze(0) <= q_idx.unsqueeze(1)                            # [T, P+T]
    allowed = causal.unsqueeze(0).unsqueeze(0) & (attention_mask[:, None, None, :] > 0)
    zero = torch.zeros((), dtype=torch.float32)
    return torch.where(allowed, zero, torch.full((), NEG, dtype=torch.float32))


class CachedAttention(nn.Module):
    """Multi-head / grouped-query self-attention with an explicit KV cache ([B, Hkv, P, Dh])."""

    def __init__(self, dim: int, heads: int, kv_heads: int, head_dim: int, qkv_bias: bool, rope_theta: Optional[float]):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        self.rope_theta = rope_theta
        self.q_proj = nn.Linear(dim, heads * head_dim, bias=qkv_bias)
        self.k_proj = nn.Linear(dim, kv_heads * head_dim, bias=qkv_bias)
        self.v_proj = nn.Linear(dim, kv_heads * head_dim, bias=qkv_bias)
        self.o_proj = nn.Linear(heads * head_dim, dim, bias=False)

    def forward(self, x, mask, cos_sin, past_k, past_v):
        b, t = x.shape[0], x.shape[1]
        q = self.q_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        if cos_sin is not None:
            cos, sin = cos_sin
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
        k = torch.cat([past_k, k], dim=2)
        v = torch.cat([past_v, v], dim=2)
        present = (k, v)
        if self.kv_heads != self.heads:  # GQA by expand + reshape (repeat_interleave exports a wrong graph)
            rep = self.heads // self.kv_heads
            s = k.shape[2]
            k = k[:, :, None].expand(b, self.kv_heads, rep, s, self.head_dim).reshape(b, self.heads, s, self.head_dim)
            v = v[:, :, None].expand(b, self.kv_heads, rep, s, self.head_dim).reshape(b, self.heads, s, self.head_dim)
        att = torch.matmul(q, k.transpose(2, 3)) * (1.0 / math.sqrt(self.head_dim)) + mask
        att = torch.softmax(att, dim=-1)
        y = torch.matmul(att, v).transpose(1, 2).reshape(b, t, self.heads * self.head_dim)
        return self.o_proj(y), present


class DecoderBlock(nn.Module):
    def __init__(self, dim, heads, kv_heads, head_dim, inter, eps, qkv_bias, rope_theta):
        super().__init__()
        self.input_layernorm = RMSNorm(dim, eps)
        self.self_attn = CachedAttention(dim, heads, kv_heads, head_dim, qkv_bias, rope_theta)
        self.post_attention_layernorm = RMSNorm(dim, eps)
        self.mlp = SwiGLU(dim, inter)

    def forward(self, x, mask, cos_sin, past_k, past_v):
        h, present = self.self_attn(self.input_layernorm(x), mask, cos_sin, past_k, past_v)
        x = x + h
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, present


class ViTBlock(nn.Module):
    """Pre-norm transformer block (SigLIP layout: LayerNorm, MHA with biases, GELU-tanh MLP)."""

    def __init__(self, dim, heads, mlp, eps):
        super().__init__()
        self.heads = heads
        self.layer_norm1 = nn.LayerNorm(dim, eps=eps)
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.layer_norm2 = nn.LayerNorm(dim, eps=eps)
        self.fc1 = nn.Linear(dim, mlp)
        self.fc2 = nn.Linear(mlp, dim)

    def forward(self, x):
        b, n, d = x.shape
        hd = d // self.heads
        h = self.layer_norm1(x)
        q = self.q_proj(h).view(b, n, self.heads, hd).transpose(1, 2)
        k = self.k_proj(h).view(b, n, self.heads, hd).transpose(1, 2)
        v = self.v_proj(h).view(b, n, self.heads, hd).transpose(1, 2)
        att = torch.softmax(torch.matmul(q, k.transpose(2, 3)) * (1.0 / math.sqrt(hd)), dim=-1)
        x = x + self.out_proj(torch.matmul(att, v).transpose(1, 2).reshape(b, n, d))
        x = x + self.fc2(F.gelu(self.fc1(self.layer_norm2(x)), approximate="tanh"))
        return x


def random_init_(module: nn.Module, gen: torch.Generator, gain: float = 1.0, emb_std: float = 1.0) -> None:
    """Seeded random weights with a scale large enough for non-degenerate greedy outputs."""
    for name, p in module.named_parameters():
        with torch.no_grad():
            if p.dim() >= 2:
                fan_in = p[0].numel() if not name.endswith("embed_tokens.weight") else 1
                if "embed" in name or "pos" in name or "codebook" in name:
                    p.copy_(torch.randn(p.shape, generator=gen) * emb_std)
                else:
                    p.copy_(torch.randn(p.shape, generator=gen) * (gain / math.sqrt(fan_in)))
            elif name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
            else:  # norm weights
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
