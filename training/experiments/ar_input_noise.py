"""Does corrupting the AR-DTok's teacher-forced input codes help greedy decoding? One variant per call.

Trains a fresh AR-DTok for a fixed number of steps on the TA-Tok and VQ-VAE of an existing run (the recipe of
train_shapes.py's ar-dtok stage, plus input noise p: each input code is replaced by a random code with probability
p; the targets stay), then measures the scale-2 round trip on held-out images with the pixel checker:

  rt_s2_cfg{1,2}           scene kept (every attribute), of all images
  rt_s2_cfg{1,2}_given_vq_ok  the same among images whose true VQ codes decode to a kept scene (removes the VQ-VAE's
                           ceiling, which is low on a short run)
  vq_ceiling, probe_s2     the VQ-VAE's ceiling, and the scene read back from scale-2 tokens by TA-Tok's probe

The loop restates the ar-dtok stage's (same batches, schedule shape and loss) rather than calling it because the stage
is time-budgeted and writes into its run, while a comparison needs equal steps and several variants side by side.
A short substrate run is enough to compare variants at equal steps (docs/model-card.md, "1.2.0"):

  training/py training/train_shapes.py --out /tmp/sub/run --bundle /tmp/sub/bundle --until vq-vae --time-scale 0.3
  for p in 0 0.5 1.0; do training/py training/experiments/ar_input_noise.py --run /tmp/sub/run --p $p & done; wait
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import train_shapes as T  # noqa: E402
from dialect_tar.ar_dtok import ARDTok  # noqa: E402
from train.common import (ar_train_logits, autocast, corrupt_codes, bf16_available, detect, labels_to_scene_dict,  # noqa: E402
                          same_scene, to_pixels)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a train_shapes.py run with ta-tok and vq-vae done")
    ap.add_argument("--p", type=float, required=True, help="share of input codes replaced by random codes")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--images", type=int, default=480, help="held-out images measured")
    a = ap.parse_args()
    torch.set_num_threads(1)
    run = T.Run(a.run)
    _, text_vocab = T.load_tok(run)
    cfgs = T.make_configs(text_vocab)
    dev, bf16 = "cpu", bf16_available("cpu")
    enc, dec, aux = T.load_tatok(run, cfgs, dev)
    vq = T.load_vq(run, cfgs, dev)
    pool = np.load(run.path("pool.npz"))
    cache = run.path("ar-data.npz")              # the ar-dtok stage's own cache, built here when missing
    if not os.path.exists(cache):
        ids = T.encode_all(enc, pool["images"], dev)
        codes = T.vq_codes_all(vq, pool["images"], dev)
        np.savez(cache + f".{os.getpid()}.npz", ids1=ids[1], ids2=ids[2], ids3=ids[3], codes=codes)
        os.replace(cache + f".{os.getpid()}.npz", cache)
    c = np.load(cache)
    ids = {s: torch.from_numpy(c[f"ids{s}"].astype(np.int64)) for s in (1, 2, 3)}
    codes = torch.from_numpy(c["codes"].astype(np.int64))
    n, B = len(codes), 64

    torch.manual_seed(T.SEED + 3)
    ar = ARDTok(cfgs[2])
    for p in ar.parameters():
        if p.dim() >= 2:
            nn.init.normal_(p, std=0.02)
    opt = torch.optim.AdamW(ar.parameters(), lr=1.5e-3, betas=(0.9, 0.95), weight_decay=0.01)
    scale_cycle = [2, 3, 2, 1]
    t0 = time.time()
    for step in range(a.steps):           # warm-up, then cosine to 10 % (the stage's schedule, on steps)
        lr = 1.5e-3 * min(1.0, (step + 1) / 50) * (0.1 + 0.45 * (1 + np.cos(np.pi * step / a.steps)))
        for group in opt.param_groups:
            group["lr"] = lr
        g = torch.Generator().manual_seed(T.SEED + 13 * step)
        idx = torch.randint(0, n, (B,), generator=g)
        with torch.no_grad():
            cond = dec(ids[scale_cycle[step % 4]][idx])
        drop = torch.rand(B, generator=g) < 0.1
        cond = torch.where(drop[:, None, None], torch.zeros_like(cond), cond)
        cd = codes[idx]
        inputs = corrupt_codes(cd, a.p, T.VQ_K, g)
        with autocast(dev, bf16):
            lg = ar_train_logits(ar, cd, cond, inputs)
        loss = F.cross_entropy(lg.float().reshape(-1, T.VQ_K), cd.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ar.parameters(), 1.0)
        opt.step()
        if step % 100 == 0:
            print(f"p {a.p} step {step} loss {float(loss):.3f} {time.time() - t0:.0f}s", flush=True)
    ar.eval()

    res = {"p": a.p, "steps": a.steps, "train_s": round(time.time() - t0)}
    N = a.images
    vi, vl = pool["val_images"][:N], pool["val_labels"][:N]
    truth = [labels_to_scene_dict(vl[j]) for j in range(N)]
    with torch.no_grad():
        true_codes = torch.from_numpy(np.asarray(T.vq_codes_all(vq, vi, dev)).astype(np.int64))
        px = (vq.decode_codes(true_codes).clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
        vq_ok = np.array([same_scene(detect(px[j]), truth[j]) for j in range(N)])
        res["vq_ceiling"] = round(float(vq_ok.mean()), 4)
        tokens = enc(to_pixels(vi, dev), torch.tensor([2]))
        probe = aux.predict(dec(tokens), 2) == torch.from_numpy(vl)
        res["probe_s2"] = round(float(probe.all(1).float().mean()), 4)
        for cfg in (1.0, 2.0):
            kept = []
            for i in range(0, N, 48):
                out = T.detok(dec, ar, vq, tokens[i:i + 48], cfg, dev)
                kept += [same_scene(detect(out[j]), truth[i + j]) for j in range(len(out))]
            kept = np.array(kept)
            res[f"rt_s2_cfg{cfg:g}"] = round(float(kept.mean()), 4)
            res[f"rt_s2_cfg{cfg:g}_given_vq_ok"] = round(float(kept[vq_ok].mean()), 4)
    print("RESULT", json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
