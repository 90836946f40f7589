"""AR-DTok: LlamaGen-style autoregressive de-tokenizer, semantic features (cond) → VQ codes, explicit KV cache."""
from typing import List, Tuple

import torch
import torch.nn as nn

from .config import ARDTokConfig
from .layers import DecoderBlock, RMSNorm, decoder_mask


class ARDTok(nn.Module):
    def __init__(self, cfg: ARDTokConfig):
        super().__init__()
        self.cfg = cfg
        self.cond_proj = nn.Linear(cfg.cond_dim, cfg.hidden)
        self.tok_embeddings = nn.Embedding(cfg.codebook_size, cfg.hidden)
        self.pos_embeddings = nn.Embedding(cfg.max_positions, cfg.hidden)
        self.layers = nn.ModuleList([
            DecoderBlock(cfg.hidden, cfg.heads, cfg.kv_heads, cfg.head_dim, cfg.intermediate, cfg.rms_eps,
                         False, None) for _ in range(cfg.layers)])
        self.norm = RMSNorm(cfg.hidden, cfg.rms_eps)
        self.output = nn.Linear(cfg.hidden, cfg.codebook_size, bias=False)

    def empty_past(self, batch: int) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        z = torch.zeros(batch, self.cfg.kv_heads, 0, self.cfg.head_dim)
        return [(z, z) for _ in range(self.cfg.layers)]

    def hidden(self, input_ids, cond, attention_mask, position_ids, past):
        x = torch.cat([self.cond_proj(cond), self.tok_embeddings(input_ids)], dim=1)  # T = Nc + S
        x = x + self.pos_embeddings(position_ids)
        mask = decoder_mask(attention_mask, x.shape[1])
        presents = []
        for layer, (pk, pv) in zip(self.layers, past):
            x, pr = layer(x, mask, None, pk, pv)
            presents.append(pr)
        return self.norm(x), presents

    def forward(self, input_ids, cond, attention_mask, position_ids, past):
        h, presents = self.hidden(input_ids, cond, attention_mask, position_ids, past)
        return self.output(h[:, -1, :]), presents

    def forward_train(self, codes, cond):
        """Teacher forcing: logits [B, G*G, K] predicting codes[i] from cond and codes[:i]."""
        b, nc = cond.shape[0], cond.shape[1]
        inp = codes[:, :-1]
        t = nc + inp.shape[1]
        mask = torch.ones(b, t, dtype=torch.long)
        pos = torch.arange(t).unsqueeze(0).expand(b, t)
        h, _ = self.hidden(inp, cond, mask, pos, self.empty_past(b))
        return self.output(h[:, nc - 1:, :])
