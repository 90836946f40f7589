"""TA-Tok: text-aligned image tokenizer (ViT encoder + cosine VQ against an LLM-embedding codebook) and its
decoder (patch-1 ViT over the pooled grid → semantic features for the AR-DTok)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import TaTokConfig
from .layers import ViTBlock


def _adaptive_windows(start: int, size: int, n: int):
    """adaptive_avg_pool's n windows over `size` cells from `start` (overlapping where n does not divide size)."""
    return [(start + i * size // n, start - (-(i + 1) * size // n)) for i in range(n)]


def _nested_windows(grid: int, p: int, coarsest: int):
    """p windows per axis, each inside one window of the coarsest scale's (grid // coarsest blocks): the blocks share
    the p windows as evenly as possible, the extra ones to the middle blocks, and split them adaptively."""
    q = grid // coarsest
    if grid % q:
        raise ValueError(f"nested pooling: the coarsest scale's {q} windows do not tile a {grid}-patch grid")
    base, extra = divmod(p, q)
    first_extra = (q - extra) // 2
    counts = [base + (first_extra <= k < first_extra + extra) for k in range(q)]
    size = grid // q
    return [w for k, n in enumerate(counts) for w in _adaptive_windows(k * size, size, n)]


def pooling_matrix(grid: int, scale: int, mode: str = "stride", coarsest: int = None) -> torch.Tensor:
    """[ (grid//scale)², grid² ] pooling matrix on a row-major grid.
    "stride": avg_pool2d(kernel=stride=scale), the released Tar's pooling; when scale does not divide grid the
    last rows and columns are dropped (1 of 27 for Tar, but 1 of 9 — a ninth of the image — for a 9×9 grid).
    "adaptive": adaptive_avg_pool2d to (grid//scale)², overlapping windows that cover the whole grid.
    "nested": windows that each lie inside one window of the coarsest scale (`coarsest`, the largest scale number),
    so that no token mixes two of its blocks: for 9×9 patches at scale 2, patches 0–2, 3–4, 4–5 and 6–8 per axis,
    where "adaptive" has 0–2, 2–4, 4–6 and 6–8, two windows that straddle scale 3's blocks (the shapes world's
    cells); scales that divide the grid get the same windows as "adaptive"."""
    if mode not in ("stride", "adaptive", "nested"):
        raise ValueError(f"pool mode {mode!r}: expected 'stride', 'adaptive' or 'nested'")
    p = grid // scale
    if mode == "stride":
        windows = [(i * scale, i * scale + scale) for i in range(p)]
    elif mode == "nested":
        if coarsest is None:
            raise ValueError("nested pooling needs the coarsest scale")
        windows = _nested_windows(grid, p, coarsest)
    else:
        windows = _adaptive_windows(0, grid, p)
    m = torch.zeros(p * p, grid * grid)
    for i, (r0, r1) in enumerate(windows):
        for j, (c0, c1) in enumerate(windows):
            w = 1.0 / ((r1 - r0) * (c1 - c0))
            for r in range(r0, r1):
                for c in range(c0, c1):
                    m[i * p + j, r * grid + c] = w
    return m


def resize_matrix(src: int, dst: int) -> torch.Tensor:
    """[dst², src²] matrix equal to F.interpolate(bilinear, align_corners=False, antialias=True) of a src×src grid."""
    eye = torch.eye(src * src).view(src * src, 1, src, src)
    if src == dst:
        return torch.eye(src * src)
    out = F.interpolate(eye, size=(dst, dst), mode="bilinear", align_corners=False, antialias=True)
    return out.view(src * src, dst * dst).t().contiguous()


class Codebook(nn.Module):
    """codebook = normalise(Linear(E)), E = K rows of the LLM's text embedding (kept as a parameter)."""

    def __init__(self, k: int, dim: int):
        super().__init__()
        self.codebook_embed = nn.Parameter(torch.zeros(k, dim))
        self.codebook_proj = nn.Linear(dim, dim)

    def forward(self):
        return F.normalize(self.codebook_proj(self.codebook_embed), p=2, dim=-1)


def _stacked(mats, n_max, cols):
    """Pad matrices to n_max rows, stack → [S, n_max, cols] plus a validity mask [S, n_max]."""
    big = torch.zeros(len(mats), n_max, cols)
    valid = torch.zeros(len(mats), n_max, dtype=torch.bool)
    for i, m in enumerate(mats):
        big[i, :m.shape[0]] = m
        valid[i, :m.shape[0]] = True
    return big, valid


class TaTokEncoder(nn.Module):
    def __init__(self, cfg: TaTokConfig, codebook: Codebook):
        super().__init__()
        self.cfg = cfg
        g = cfg.grid
        self.patch_embed = nn.Conv2d(3, cfg.width, cfg.patch, stride=cfg.patch)
        self.pos_embed = nn.Parameter(torch.zeros(g * g, cfg.width))
        n_used = cfg.select_layer if cfg.select_layer >= 0 else cfg.layers + 1 + cfg.select_layer
        self.blocks = nn.ModuleList([ViTBlock(cfg.width, cfg.heads, cfg.mlp, cfg.ln_eps) for _ in range(n_used)])
        self.encode_task_layer = nn.Sequential(nn.Linear(cfg.width, cfg.width), nn.Tanh())
        self.in_linear = nn.Linear(cfg.width, cfg.code_dim)
        self.codebook = codebook
        mats = [pooling_matrix(g, s, cfg.pool_mode, max(cfg.scales)) for s in cfg.scales]
        pool, valid = _stacked(mats, g * g, g * g)
        self.register_buffer("pool", pool, persistent=False)
        self.register_buffer("pool_valid", valid, persistent=False)

    def features(self, pixels):
        if pixels.shape[-1] != self.cfg.encoder_size:
            pixels = F.interpolate(pixels, size=(self.cfg.encoder_size, self.cfg.encoder_size), mode="bilinear",
                                   align_corners=False)
        x = self.patch_embed(pixels).flatten(2).transpose(1, 2) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return x  # [B, G², W]

    def forward(self, pixels, scale):
        """pixels [B, 3, S, S] (normalised), scale int64 [1] → ids [B, N]."""
        x = self.features(pixels)
        si = (scale - 1).reshape(())
        rows = torch.nonzero(self.pool_valid[si]).squeeze(1)      # dynamic N
        m = self.pool[si].index_select(0, rows)                   # [N, G²]
        x = torch.matmul(m, x)                                    # [B, N, W]
        z = self.in_linear(self.encode_task_layer(x))
        z = F.normalize(z, p=2, dim=-1)
        return torch.matmul(z, self.codebook().t()).argmax(-1)


class TaTokDecoder(nn.Module):
    def __init__(self, cfg: TaTokConfig, codebook: Codebook):
        super().__init__()
        self.cfg = cfg
        self.codebook = codebook
        self.out_linear = nn.Linear(cfg.code_dim, cfg.width)
        self.patch_embed = nn.Linear(cfg.width, cfg.dec_width)     # patch size 1
        self.pos_embed = nn.Parameter(torch.zeros(cfg.dec_pos_grid ** 2, cfg.dec_width))
        self.blocks = nn.ModuleList([ViTBlock(cfg.dec_width, cfg.dec_heads, cfg.dec_mlp, cfg.ln_eps)
                                     for _ in range(cfg.dec_layers)])
        self.post_layernorm = nn.LayerNorm(cfg.dec_width, eps=cfg.ln_eps)
        self.decode_task_layer = nn.Sequential(nn.Linear(cfg.dec_width, cfg.dec_width), nn.Tanh(),
                                               nn.Linear(cfg.dec_width, cfg.feat_dim))
        toks = [cfg.tokens(s) for s in cfg.scales]
        mats = [resize_matrix(cfg.dec_pos_grid, cfg.pooled_grid(s)) for s in cfg.scales]
        rz, valid = _stacked(mats, max(toks), cfg.dec_pos_grid ** 2)
        self.register_buffer("pos_resize", rz, persistent=False)
        self.register_buffer("pos_valid", valid, persistent=False)
        self.register_buffer("scale_tokens", torch.tensor(toks, dtype=torch.long), persistent=False)

    def forward(self, ids):
        """ids [B, N] → features [B, N, C]."""
        z = F.embedding(ids, self.codebook())
        x = self.patch_embed(self.out_linear(z))
        n = torch.tensor(ids.shape[1], dtype=torch.long) if not torch.jit.is_tracing() else \
            torch._shape_as_tensor(ids)[1]
        si = (self.scale_tokens == n).long().argmax()
        rows = torch.nonzero(self.pos_valid[si]).squeeze(1)
        pos = self.pos_resize[si].index_select(0, rows) @ self.pos_embed   # [N, Dd]
        x = x + pos
        for blk in self.blocks:
            x = blk(x)
        return self.decode_task_layer(self.post_layernorm(x))
