"""Give a shipped bundle the recipe's current TA-Tok, and train again everything that reads or writes its tokens.

    # on a GPU machine: training/gpu_retokenize.sh runs these (detok and unified side by side)
    python3 training/retokenize.py --part ta-tok  --out RUN --device cuda --minutes 2
    python3 training/retokenize.py --part detok   --out RUN --device cuda --minutes 6
    python3 training/retokenize.py --part unified --out RUN --device cuda --minutes 6 --workers 8
    python3 training/retokenize.py --part weights --out RUN --weights-dir OUT
    # where Node is: the bundle from those weights, its graphs checked in onnxruntime-node
    training/py training/retokenize.py --part export --out /tmp/retok-export --weights-dir OUT \\
        --bundle /tmp/tar-shapes-next --version 2.0.0

Why: 1.7.0's round trip at the default scale is bounded by its TA-Tok's scale-2 pooling, whose windows straddle the
scene's cells; the recipe's "nested" pooling reads far more of the scene from those 16 tokens (docs/training.md,
"TA-Tok pooling of the miniature"). A new TA-Tok changes every image token, so the de-tokenizer and the LLM must
learn them again, but not everything must start over. Kept from the bundle: the tokenizer, the codebook's frozen
rows (the text embeddings the codebook projects, so the new codebook lives where the old one did), and the LLM's
weights, whose language and task skills do not depend on the image tokens: its 256 image-token rows restart from the
new codebook (train_shapes.init_image_rows_, as the recipe's unified stage starts) and it trains on records encoded
with the new TA-Tok, with the continuation's batches and loss (continue_unified.train). The TA-Tok and the
de-tokenizer are the recipe's own stages (stage_ta_tok, stage_vq_vae, stage_ar_dtok) in the run directory.

Not run on a GPU yet: prepared in a session whose device time was spent, and checked end to end on the CPU at
tiny sizes (`--smoke`). Weights travel as three .npz files (each under the device's 16 MiB), exported here.
"""
import argparse
import os
import shutil
import sys
import time
from types import SimpleNamespace

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
ROOT = os.path.dirname(HERE)

import continue_unified as C  # noqa: E402
import export_bundle as eb  # noqa: E402
import retrain_detok as R  # noqa: E402
import train_shapes as T  # noqa: E402
from dialect_tar.bundle_torch import load_bundle  # noqa: E402
from dialect_tar.compat import torch_load  # noqa: E402
from dialect_tar.reference import TarPipeline  # noqa: E402
from train.common import (Run, atomic_save, bf16_available, load_state_npz, log, prefixed, save_state_npz,  # noqa: E402
                          unprefixed)

PARTS = ["ta-tok", "detok", "unified", "weights", "export"]
RECORDS_SEED0 = 304 * 10**6     # the unified part's records: a range no run has drawn (continue_unified.py's are 3·10^8 +)
WEIGHT_FILES = {"tatok": "tatok.npz", "llm": "llm.npz", "detok": "detok.npz"}


def stage_args(a) -> SimpleNamespace:
    """What the recipe's stages read from their command line, for this script's run."""
    return SimpleNamespace(device=a.device, bf16=a.bf16, threads=a.threads, step_scale=1.0, time_scale=1.0,
                           partner_done=None, ta_entropy=0.5, ta_tau=0.05)


def codebook_source(enc) -> dict:
    """What train_shapes.build_tatok takes for a "text model" (llm-text.pt): the bundle's frozen codebook rows as
    the whole embedding table, every row chosen, so the new codebook projects the same text embeddings."""
    rows = enc.codebook.codebook_embed.detach().clone()
    return {"llm": {"embed_tokens.weight": rows}, "codebook_rows": list(range(len(rows)))}


def prepare(run: Run, a) -> None:
    """The run directory the recipe's TA-Tok stage reads: the bundle's tokenizer, its codebook rows as the
    "text model" whose embeddings the codebook projects, and the image pool."""
    tok, _, enc, _, _, _, manifest = load_bundle(a.source)
    if not os.path.exists(run.path("tokenizer.json")):
        shutil.copy(os.path.join(a.source, manifest["files"]["tokenizer"]), run.path("tokenizer.json"))
    if not os.path.exists(run.path("llm-text.pt")):
        atomic_save(codebook_source(enc), run.path("llm-text.pt"))
    R.make_pool(run, a.pool, 1000, a.workers)


def part_ta_tok(run: Run, a) -> None:
    prepare(run, a)
    T.PLAN["ta-tok"] = (a.step_cap, a.minutes)
    t0 = time.time()
    info = T.stage_ta_tok(run, stage_args(a))
    run.mark_done("ta-tok", time.time() - t0, {**info, "pool_mode": T.POOL_MODE})


def part_detok(run: Run, a) -> None:
    for stage, share in R.SHARES.items():
        T.PLAN[stage] = (a.step_cap, a.minutes * share)
    T.VQ_BATCH, T.AR_BATCH = a.vq_batch, a.ar_batch
    for stage, fn in (("vq-vae", T.stage_vq_vae), ("ar-dtok", T.stage_ar_dtok)):
        if not run.done(stage):
            t0 = time.time()
            info = fn(run, stage_args(a))
            run.mark_done(stage, time.time() - t0, info)


def part_unified(run: Run, a) -> None:
    tok, llm, _, _, _, _, manifest = load_bundle(a.source)
    cfgs = T.make_configs(tok.token_id("<|endoftext|>"))
    enc = T.load_tatok(run, cfgs, a.device)[0]
    llm.to(a.device)
    T.init_image_rows_(llm, enc, manifest)
    T.QUESTION_WEIGHTS = C.parse_weights(C.DEFAULT_QUESTION_WEIGHTS, T.L.QUESTION_TEMPLATES, "question weights")
    train_args = SimpleNamespace(**vars(stage_args(a)), records=a.records, records_seed=RECORDS_SEED0, mix=T.U_MIX,
                                 workers=a.workers, lr=a.lr, warmup=100, steps=a.step_cap, minutes=a.minutes)
    t0 = time.time()
    info = C.train(run, train_args, tok, llm, enc, manifest)
    atomic_save({"llm": llm.state_dict()}, run.path("llm.pt"))
    run.mark_done("unified", time.time() - t0, info)


def part_weights(run: Run, a) -> None:
    """The three parts' weights as .npz files in --weights-dir."""
    os.makedirs(a.weights_dir, exist_ok=True)
    ta = torch_load(run.path("ta-tok.pt"))
    ar, vq = torch_load(run.path("ar-dtok.pt"))["ar"], torch_load(run.path("vq-vae.pt"))["vq"]
    parts = {"tatok": prefixed({"enc": ta["enc"], "dec": ta["dec"]}), "llm": torch_load(run.path("llm.pt"))["llm"],
             "detok": prefixed({"ar": ar, "vq": vq})}
    for name, state in parts.items():
        save_state_npz(os.path.join(a.weights_dir, WEIGHT_FILES[name]), state)
    shutil.copy(run.path("times.json"), os.path.join(a.weights_dir, "times.json"))
    log(f"[weights] {', '.join(WEIGHT_FILES.values())} written to {a.weights_dir}")


def part_export(a) -> None:
    """A whole bundle from --weights-dir: the source bundle's tokenizer and manifest (new version and description),
    every graph exported anew (pytorch.json records the new TA-Tok's pooling), checked in onnxruntime-node."""
    tok, llm, old_enc, _, ar, vq, manifest = load_bundle(a.source)
    cfgs = T.make_configs(tok.token_id("<|endoftext|>"))
    source = codebook_source(old_enc)
    enc, dec = T.build_tatok(cfgs, source["codebook_rows"], source["llm"], "cpu")
    tatok = load_state_npz(os.path.join(a.weights_dir, WEIGHT_FILES["tatok"]))
    enc.load_state_dict(unprefixed(tatok, "enc"))
    dec.load_state_dict(unprefixed(tatok, "dec"))
    llm.load_state_dict(load_state_npz(os.path.join(a.weights_dir, WEIGHT_FILES["llm"])))
    detok = load_state_npz(os.path.join(a.weights_dir, WEIGHT_FILES["detok"]))
    ar.load_state_dict(unprefixed(detok, "ar"))
    vq.load_state_dict(unprefixed(detok, "vq"))
    for module in (enc, dec, llm, ar, vq):
        module.eval()
    manifest = {**manifest, "version": a.version,
                "description": f"{manifest['description']}; TA-Tok ({T.POOL_MODE} pooling), de-tokenizer and the "
                               f"LLM's image tokens trained anew{' on ' + a.trained_on if a.trained_on else ''} "
                               f"(training/retokenize.py)"}
    tmp = a.bundle.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    eb.export_bundle(tmp, tok, llm, enc, dec, ar, vq, manifest)
    shutil.rmtree(a.bundle, ignore_errors=True)
    os.rename(tmp, a.bundle)
    log(f"[export] {a.bundle}: version {a.version}")
    os.makedirs(a.out, exist_ok=True)
    T.check_onnx_parity(TarPipeline(manifest, tok, llm, enc, dec, ar, vq), tok, a.bundle, os.path.join(a.out, "golden"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", required=True, choices=PARTS)
    ap.add_argument("--from", dest="source", default=os.path.join(ROOT, "models", "tar-shapes"),
                    help="the bundle whose tokenizer, codebook rows and LLM are kept")
    ap.add_argument("--out", required=True, help="run directory (the parts share it)")
    ap.add_argument("--minutes", type=float, default=6.0, help="the part's training budget (wall clock)")
    ap.add_argument("--step-cap", type=int, default=10**6, help="the part's step cap (per stage)")
    ap.add_argument("--pool", type=int, default=200000, help="images of the TA-Tok and de-tokenizer pool")
    ap.add_argument("--records", type=int, default=200000, help="records of the unified part")
    ap.add_argument("--lr", type=float, default=1e-3, help="the unified part's peak learning rate (the recipe's "
                                                           "stage: 1.5e-3; a continuation: 3–5e-4)")
    ap.add_argument("--vq-batch", type=int, default=128)
    ap.add_argument("--ar-batch", type=int, default=256)
    ap.add_argument("--workers", type=int, default=1, help="processes that render and batch")
    ap.add_argument("--weights-dir", help="weights / export: the folder of the three .npz files")
    ap.add_argument("--bundle", help="export: where the new bundle goes (replaced if it exists)")
    ap.add_argument("--version", help="export: the new bundle's manifest version")
    ap.add_argument("--trained-on", default="", help="export: the machine that trained it, for the description")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    a = ap.parse_args()
    if a.part in ("weights", "export") and not a.weights_dir:
        ap.error(f"--part {a.part} needs --weights-dir")
    if a.part == "export" and not (a.bundle and a.version):
        ap.error("--part export needs --bundle and --version")
    torch.set_num_threads(a.threads)
    torch.manual_seed(T.SEED)
    a.bf16 = a.precision == "bf16" or (a.precision == "auto" and bf16_available(a.device))
    if a.part == "export":
        part_export(a)
        return
    run = Run(a.out)
    if a.part != "ta-tok" and not run.done("ta-tok"):
        raise SystemExit(f"{a.out}: run --part ta-tok first")
    log(f"[retokenize] {a.part} for {a.source}: {a.minutes:g} min on {a.device}, TA-Tok pooling {T.POOL_MODE}")
    {"ta-tok": part_ta_tok, "detok": part_detok, "unified": part_unified, "weights": part_weights}[a.part](run, a)


if __name__ == "__main__":
    main()
