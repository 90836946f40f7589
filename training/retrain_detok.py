"""Train a new de-tokenizer (VQ-VAE and AR-DTok) for a shipped bundle's TA-Tok, and put it into a bundle.

    # on a GPU machine (training/gpu_continue.sh runs this beside continue_unified.py): train, write the weights
    python3 training/retrain_detok.py --from models/tar-shapes --out /tmp/detok --device cuda --minutes 7 \\
        --workers 12 --weights-out OUT/detok.npz
    # where Node is: a bundle with the new de-tokenizer, its graphs checked in onnxruntime-node
    training/py training/retrain_detok.py --from models/tar-shapes --out /tmp/detok-export \\
        --from-weights detok.npz --bundle /tmp/tar-shapes-next --version 1.7.0
    # or train a finished de-tokenizer's AR-DTok further (its VQ-VAE stays), on either machine
    training/py training/retrain_detok.py --out /tmp/detok-more --continue-from detok.npz --minutes 35 \
        --pool 60000 --ar-batch 64 --scale-cycle 2,2,3,2,2,1 --weights-out /tmp/detok-more/detok.npz

The de-tokenizer bounds every figure that ends in pixels: 1.6.0 keeps every attribute of only 81 % of images
through a round trip at scale 2, and generation and editing go through the same AR-DTok and VQ decoder. On the
2-core CPU the recipe's VQ-VAE and AR-DTok stages stop at their time budgets (36 and 46 minutes, batches of 32
and 64, a pool of 30,000 images). A GPU runs the same stages, train_shapes.stage_vq_vae and stage_ar_dtok with
their losses, input noise and schedules, at four times the batch for many times the steps, on a larger pool.

The TA-Tok stays the bundle's, so the LLM's image tokens keep their meaning and the new de-tokenizer drops into the
bundle: only ar_dtok.onnx, vq_decoder.onnx and the manifest change. The new VQ-VAE's codes mean nothing to the old
AR-DTok and the other way round, which is why both are trained, from scratch, together. Weights travel as .npz
(--weights-out): the graphs are exported where the bundle is checked, by this machine's exporter, as every bundle's.
"""
import argparse
import json
import os
import shutil
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
ROOT = os.path.dirname(HERE)

import export_bundle as eb  # noqa: E402
import train_shapes as T  # noqa: E402
from dialect_tar.bundle_torch import load_bundle  # noqa: E402
from dialect_tar.compat import torch_load  # noqa: E402
from dialect_tar.config import to_dict  # noqa: E402
from dialect_tar.reference import TarPipeline  # noqa: E402
from train.common import (Run, atomic_save, bf16_available, load_state_npz, log, prefixed, save_state_npz,  # noqa: E402
                          unprefixed)

# Shares of --minutes: the recipe's CPU budgets are 36 (VQ-VAE), 6 (decoder refinement) and 46 (AR-DTok) minutes.
SHARES = {"vq-vae": 0.3, "vq-refine": 0.05, "ar-dtok": 0.65}
GUIDANCE = (1.5, 2.0, 3.0)      # detok cfgScale values the monitoring round trip is measured at


def check_configs(source_configs: dict, text_vocab: int) -> None:
    """The recipe's AR-DTok and VQ-VAE configs must be the bundle's, or the new graphs would not fit its runtime
    (the TA-Tok is the bundle's own, whatever the recipe's pooling is now)."""
    _, _, ar, vq = T.make_configs(text_vocab)
    for key, cfg in (("arDTok", ar), ("vq", vq)):
        if to_dict(cfg) != source_configs[key]:
            raise SystemExit(f"{key}: the recipe's config {to_dict(cfg)} is not the bundle's {source_configs[key]}")


def make_pool(run: Run, size: int, held_out: int, workers: int) -> None:
    """The image pool of both stages (seeds POOL_SEEDS[0] + i) and the monitoring images, as stage_data writes."""
    if os.path.exists(run.path("pool.npz")):
        return
    t0 = time.time()
    imgs, labs = T.render_pool(range(T.POOL_SEEDS[0], T.POOL_SEEDS[0] + size), workers)
    vimgs, vlabs = T.render_pool(range(T.VAL_SEED0, T.VAL_SEED0 + held_out), workers)
    np.savez(run.path("pool.npz"), images=imgs, labels=labs, val_images=vimgs, val_labels=vlabs)
    log(f"[pool] {size} + {held_out} images rendered in {time.time() - t0:.0f}s")


def train(a) -> None:
    run = Run(a.out)
    tok, _, enc, dec, old_ar, old_vq, manifest = load_bundle(a.source)
    with open(os.path.join(a.source, eb.PYTORCH_CONFIG)) as fh:
        check_configs(json.load(fh), tok.token_id("<|endoftext|>"))
    if not os.path.exists(run.path("tokenizer.json")):
        shutil.copy(os.path.join(a.source, manifest["files"]["tokenizer"]), run.path("tokenizer.json"))
    make_pool(run, a.pool, max(500, a.roundtrip_n), a.workers)
    shares, init = SHARES, None
    if a.continue_from:
        # The VQ-VAE stays (its codes are what the AR-DTok learned); all the minutes go to the AR-DTok.
        shares = {"ar-dtok": 1.0}
        weights = load_state_npz(a.continue_from)
        init, vq_state = unprefixed(weights, "ar"), unprefixed(weights, "vq")
        if not run.done("vq-vae"):
            atomic_save({"vq": vq_state}, run.path("vq-vae.pt"))
            run.mark_done("vq-vae", 0.0, {"from": a.continue_from})
    for stage, share in shares.items():
        T.PLAN[stage] = (a.step_cap, a.minutes * share)
    T.VQ_BATCH, T.AR_BATCH = a.vq_batch, a.ar_batch
    T.AR_LR = a.ar_lr or (5e-4 if a.continue_from else T.AR_LR)
    if a.scale_cycle:
        T.AR_SCALE_CYCLE = tuple(int(x) for x in a.scale_cycle.split(","))
    enc.to(a.device)
    dec.to(a.device)
    results = {}
    for stage, fn in (("vq-vae", lambda: T.stage_vq_vae(run, a)),
                      ("ar-dtok", lambda: T.stage_ar_dtok(run, a, (enc, dec), init))):
        if run.done(stage):
            continue
        t0 = time.time()
        info = fn()
        run.mark_done(stage, time.time() - t0, info)
        results[stage] = info
    cfgs = T.make_configs(tok.token_id("<|endoftext|>"))
    new_ar = T.ARDTok(cfgs[2]).to(a.device)
    new_ar.load_state_dict(torch_load(run.path("ar-dtok.pt"), map_location=a.device)["ar"])
    new_vq = T.load_vq(run, cfgs, a.device)
    new_ar.eval()
    results["roundtrip"] = compare_roundtrip(run, enc, dec, (old_ar, old_vq), (new_ar, new_vq), a.device,
                                           a.roundtrip_n, manifest["sampling"]["detok"]["cfgScale"])
    with open(run.path("detok-results.json"), "w") as fh:
        json.dump(results, fh, indent=2)
    save_state_npz(a.weights_out, prefixed({"ar": new_ar.state_dict(), "vq": new_vq.state_dict()}))
    log(f"[detok] weights written to {a.weights_out}")


def compare_roundtrip(run: Run, enc, dec, old, new, device, n: int, bundle_guidance: float) -> dict:
    """Share of monitoring images whose every attribute the pixel checker reads back after a scale-2 round trip, the
    bundle's de-tokenizer at its guidance and the new one at each of GUIDANCE."""
    pool = np.load(run.path("pool.npz"))
    imgs, labs = pool["val_images"][:n], pool["val_labels"][:n]
    old_ar, old_vq = old[0].to(device), old[1].to(device)
    out = {"images": len(imgs), f"bundle_cfg{bundle_guidance:g}":
           T.roundtrip_eval(enc, dec, old_ar, old_vq, imgs, labs, 2, bundle_guidance, device)}
    for cfg in GUIDANCE:
        out[f"new_cfg{cfg:g}"] = T.roundtrip_eval(enc, dec, new[0], new[1], imgs, labs, 2, cfg, device)
    for scale in (1, 3):
        out[f"new_s{scale}_cfg2"] = T.roundtrip_eval(enc, dec, new[0], new[1], imgs, labs, scale, 2.0, device)
    log(f"[detok] round trip of monitoring images (scene kept): {out}")
    return out


def export(a) -> None:
    """The source bundle with the new AR-DTok and VQ decoder, a new version, and the given detok guidance; its
    graphs checked against the PyTorch reference in onnxruntime-node."""
    tok, llm, enc, dec, ar, vq, manifest = load_bundle(a.source)
    weights = load_state_npz(a.from_weights)
    ar.load_state_dict(unprefixed(weights, "ar"))
    vq.load_state_dict(unprefixed(weights, "vq"))
    sampling = {**manifest["sampling"], "detok": {**manifest["sampling"]["detok"], "cfgScale": a.guidance}}
    manifest = {**manifest, "version": a.version, "sampling": sampling,
                "description": f"{manifest['description']}; de-tokenizer (VQ-VAE and AR-DTok) trained anew "
                               f"on {a.trained_on} (training/retrain_detok.py)"}
    eb.derive_bundle(a.source, a.bundle, manifest, {"arDTok": lambda path: eb.export_ardtok(ar, path),
                                                    "vqDecoder": lambda path: eb.export_vq_decoder(vq, path)})
    log(f"[export] {a.bundle}: version {a.version}, detok cfgScale {a.guidance}")
    os.makedirs(a.out, exist_ok=True)
    T.check_onnx_parity(TarPipeline(manifest, tok, llm, enc, dec, ar, vq), tok, a.bundle,
                        os.path.join(a.out, "golden"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="source", default=os.path.join(ROOT, "models", "tar-shapes"),
                    help="the bundle whose TA-Tok the de-tokenizer serves")
    ap.add_argument("--out", required=True, help="run directory: pool, checkpoints, times, results")
    ap.add_argument("--weights-out", help="train, and write the AR-DTok and VQ-VAE weights here (.npz)")
    ap.add_argument("--from-weights", help="export: the bundle with the de-tokenizer of this .npz")
    ap.add_argument("--continue-from", help="train: the AR-DTok of this .npz (a --weights-out) further, on the codes "
                                            "of its VQ-VAE, which stays; all of --minutes go to the AR-DTok")
    ap.add_argument("--scale-cycle", help="the AR-DTok's condition scales, one a step (default 2,3,2,1: "
                                          "train_shapes.AR_SCALE_CYCLE); 2,2,3,2,2,1 leans on the default scale")
    ap.add_argument("--ar-lr", type=float, help="the AR-DTok's peak learning rate (default 1.5e-3; 5e-4 with "
                                                "--continue-from)")
    ap.add_argument("--bundle", help="export: where the new bundle goes (replaced if it exists)")
    ap.add_argument("--version", help="export: the new bundle's manifest version")
    ap.add_argument("--trained-on", default="a GPU", help="export: the machine that trained the weights, for the "
                                                           "bundle's description")
    ap.add_argument("--guidance", type=float, default=2.0,
                    help="export: the manifest's detok cfgScale (pick it from the run's detok-results.json)")
    ap.add_argument("--minutes", type=float, default=7.0, help="training budget of both stages (wall clock)")
    ap.add_argument("--step-cap", type=int, default=10**6, help="step cap of each stage")
    ap.add_argument("--pool", type=int, default=200000, help="images of the pool (the CPU recipe: 30,000)")
    ap.add_argument("--roundtrip-n", type=int, default=1000,
                    help="monitoring images of the closing round-trip comparison (the stage's own: 96)")
    ap.add_argument("--vq-batch", type=int, default=128)
    ap.add_argument("--ar-batch", type=int, default=256)
    ap.add_argument("--workers", type=int, default=1, help="processes that render the pool")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    a = ap.parse_args()
    if bool(a.weights_out) == bool(a.from_weights):
        ap.error("give either --weights-out (train) or --from-weights (export)")
    if a.from_weights and not (a.bundle and a.version):
        ap.error("--from-weights needs --bundle and --version")
    torch.set_num_threads(a.threads)
    torch.manual_seed(T.SEED)
    a.bf16 = a.precision == "bf16" or (a.precision == "auto" and bf16_available(a.device))
    a.step_scale, a.time_scale, a.partner_done = 1.0, 1.0, None
    if a.from_weights:
        export(a)
    else:
        plan = f"the AR-DTok of {a.continue_from} further" if a.continue_from else f"from scratch {SHARES}"
        log(f"[detok] for {a.source}: {a.minutes:g} min, {plan}, pool {a.pool}, batches VQ {a.vq_batch} / "
            f"AR {a.ar_batch}, {'bf16 mixed' if a.bf16 else 'fp32'} on {a.device}")
        train(a)


if __name__ == "__main__":
    main()
