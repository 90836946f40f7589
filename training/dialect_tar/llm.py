"""Qwen2-style decoder-only LLM with an explicit KV cache (Optimum / transformers.js I/O convention)."""
from typing import List, Tuple

import torch
import torch.nn as nn

from .config import LLMConfig
from .layers import DecoderBlock, RMSNorm, decoder_mask, rope_cos_sin


class QwenLM(nn.Module):
    def __init__(self, cfg: LLMConfig):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden)
        self.layers = nn.ModuleList([
            DecoderBlock(cfg.hidden, cfg.heads, cfg.kv_heads, cfg.head_dim, cfg.intermediate, cfg.rms_eps,
                         cfg.qkv_bias, cfg.rope_theta) for _ in range(cfg.layers)])
        self.norm = RMSNorm(cfg.hidden, cfg.rms_eps)
        self.lm_head = None if cfg.tie_embeddings else nn.Linear(cfg.hidden, cfg.vocab_size, bias=False)

    def head(self, h):
        return h @ self.embed_tokens.weight.t() if self.lm_head is None else self.lm_head(h)

    def empty_past(self, batch: int) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        z = torch.zeros(batch, self.cfg.kv_heads, 0, self.cfg.head_dim)
        return [(z, z) for _ in range(self.cfg.layers)]

    def hidden(self, input_ids, attention_mask, position_ids, past):
        x = self.embed_tokens(input_ids)
        mask = decoder_mask(attention_mask, input_ids.shape[1])
        cs = rope_cos_sin(position_ids, self.cfg.head_dim, self.cfg.rope_theta)
        presents = []
        for layer, (pk, pv) in zip(self.layers, past):
            x, pr = layer(x, mask, cs, pk, pv)
            presents.append(pr)
        return self.norm(x), presents

    def forward(self, input_ids, attention_mask, position_ids, past):
        """→ logits of the last new position [B, V], presents (list of (k, v))."""
        h, presents = self.hidden(input_ids, attention_mask, position_ids, past)
        return self.head(h[:, -1, :]), presents

    def forward_train(self, input_ids, attention_mask=None):
        """Full-sequence logits [B, T, V] for training (no cache; left padding supported)."""
        b, t = input_ids.shape
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        h, _ = self.hidden(input_ids, attention_mask, position_ids, self.empty_past(b))
        return self.head(h)
