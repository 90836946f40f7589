"""Seconds per training step of the VQ-VAE (the one stage that stays fp32) in four variants: fp32 or bf16 autocast
of its encoder and decoder, its weights in the default (NCHW) or the channels-last memory layout. The step is the stage's shape and work
(a batch of 32 64×64 images, encoder, quantiser, decoder, a reconstruction + codebook loss, backward, AdamW) on one
thread; random images, since the cost does not depend on them. It says what the stage could gain on a machine where
its time budget binds (docs/training.md, "Precision"):

  training/py training/experiments/vq_speed.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import train_shapes as T  # noqa: E402
from dialect_tar.vq import VQVAE  # noqa: E402
from train.common import vq_quantize  # noqa: E402
from timing import mean_seconds  # noqa: E402

TEXT_VOCAB, BATCH = 638, 32


def seconds_per_step(bf16: bool, channels_last: bool, warmup: int = 3, steps: int = 20) -> float:
    torch.manual_seed(0)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    vq = VQVAE(T.make_configs(TEXT_VOCAB)[3]).to(memory_format=layout)
    opt = torch.optim.AdamW(vq.parameters(), 1e-3)
    # as the stage builds its batch: uint8 NHWC images permuted to NCHW, i.e. channels-last strides in either case
    x = torch.randint(0, 256, (BATCH, 64, 64, 3), dtype=torch.uint8).permute(0, 3, 1, 2).float() / 255.0

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            z = vq.encoder(x * 2 - 1).float()
        flat, codes, cb = vq_quantize(vq, z)      # the quantiser stays fp32, as in the stage
        q = cb[codes]
        b, c, g, _ = z.shape
        zq = (flat + (q - flat).detach()).transpose(1, 2).reshape(b, c, g, g)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            rec = vq.decoder(zq).float()
        loss = ((rec - x).abs() + (rec - x) ** 2).mean() + F.mse_loss(q, flat.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()

    return mean_seconds(step, warmup, steps)


if __name__ == "__main__":
    torch.set_num_threads(1)
    for bf16 in (False, True):
        for channels_last in (False, True):
            s = seconds_per_step(bf16, channels_last)
            print(f"{'bf16' if bf16 else 'fp32'} {'channels-last' if channels_last else 'NCHW':13s} "
                  f"{s:.3f} s/step ({60 / s:.0f} steps a minute)", flush=True)
