"""A small convolutional VQ-VAE: 64×64 RGB ↔ an 8×8 grid of codes."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import VQConfig


class ResBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


class VQEncoder(nn.Module):
    def __init__(self, cfg: VQConfig):
        super().__init__()
        ch = cfg.channels
        layers = [nn.Conv2d(3, ch[0], 3, padding=1)]
        c = ch[0]
        for c2 in ch:  # one stride-2 conv per level: 64 → 32 → 16 → 8
            layers += [ResBlock(c), nn.Conv2d(c, c2, 4, stride=2, padding=1)]
            c = c2
        layers += [ResBlock(c), nn.SiLU(), nn.Conv2d(c, cfg.code_dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class VQDecoder(nn.Module):
    def __init__(self, cfg: VQConfig):
        super().__init__()
        self.cfg = cfg
        ch = list(reversed(cfg.channels))
        self.conv_in = nn.Conv2d(cfg.code_dim, ch[0], 3, padding=1)
        self.res_in = ResBlock(ch[0])
        ups = []
        c = ch[0]
        for c2 in ch:
            ups.append(nn.ModuleList([nn.Conv2d(c, c2, 3, padding=1), ResBlock(c2)]))
            c = c2
        self.ups = nn.ModuleList(ups)
        self.conv_out = nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, z):
        x = self.res_in(self.conv_in(z))
        for conv, res in self.ups:
            x = res(conv(F.interpolate(x, scale_factor=2.0, mode="nearest")))
        return torch.sigmoid(self.conv_out(F.silu(x)))


class VQVAE(nn.Module):
    def __init__(self, cfg: VQConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = VQEncoder(cfg)
        self.codebook = nn.Embedding(cfg.codebook_size, cfg.code_dim)
        self.decoder = VQDecoder(cfg)

    def quantize(self, z):
        """z [B, C, G, G] → codes [B, G*G] (nearest codebook entry in L2)."""
        b, c = z.shape[:2]
        flat = z.permute(0, 2, 3, 1).reshape(b, -1, c)
        e = self.codebook.weight
        d = flat.pow(2).sum(-1, keepdim=True) - 2 * flat @ e.t() + e.pow(2).sum(-1)
        return d.argmin(-1)

    def encode(self, pixels01):
        return self.quantize(self.encoder(pixels01 * 2 - 1))

    def decode_codes(self, codes):
        """codes [B, G*G] int64 → pixels [B, 3, H, H] in [0, 1]."""
        g = self.cfg.grid
        z = self.codebook(codes)                                  # [B, G*G, C]
        z = z.transpose(1, 2).reshape(codes.shape[0], self.cfg.code_dim, g, g)
        return self.decoder(z)

    def forward(self, pixels01):
        """Training forward: straight-through reconstruction, codebook and commitment losses."""
        z = self.encoder(pixels01 * 2 - 1)
        codes = self.quantize(z)
        b, c, g, _ = z.shape
        zq = self.codebook(codes).transpose(1, 2).reshape(b, c, g, g)
        vq_loss = F.mse_loss(zq, z.detach()) + 0.25 * F.mse_loss(z, zq.detach())
        rec = self.decoder(z + (zq - z).detach())
        return rec, codes, vq_loss
