"""Train a shipped bundle's unified LLM further, on records it has never seen, and export the result as a bundle.

    training/py training/continue_unified.py --from models/tar-shapes --out training/runs/continue \\
        --bundle /tmp/tar-shapes-next --minutes 60 --version 1.5.0

The unified stage is the one most of the model's figures depend on, and on a 2-core CPU the 2-hour recipe
(train_shapes.py) stops it at its time budget long before its step cap. This script resumes where a bundle left
off without the run directory that made it: it rebuilds the PyTorch modules from the bundle alone
(dialect_tar.bundle_torch), draws a fresh record set from its own seed range (CONTINUE_SEED0: inside the training
range, disjoint from the recipe's), encodes it with the bundle's own TA-Tok, and trains only the LLM, with the
stage's batches and loss (train_shapes.UnifiedBatches, masked_lm_loss) under a warm restart of the cosine schedule
at a lower peak rate. TA-Tok, the AR-DTok and the VQ decoder are copied unchanged, so the new bundle differs from
the old one only in llm.onnx and in its manifest's version and description.

It checkpoints every minute and resumes after a kill (OUT/unified-continue.partial.pt); the export writes golden
outputs of the PyTorch reference and checks the exported graphs against them in onnxruntime-node, as the recipe's
check stage does. Measure the result with `npm run eval:model -- --model BUNDLE`.
"""
import argparse
import functools
import os
import pickle
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
ROOT = os.path.dirname(HERE)

import export_bundle as eb  # noqa: E402
import train_shapes as T  # noqa: E402
from dialect_tar.bundle_torch import load_bundle  # noqa: E402
from dialect_tar.compat import torch_load  # noqa: E402
from dialect_tar.reference import TarPipeline  # noqa: E402
from train.common import (Run, atomic_save, bf16_available, chunked_map, load_state_npz, log,  # noqa: E402
                          masked_lm_loss, save_state_npz)

# Seeds of the continuation's records: the recipe draws its unified records from UNIFIED_SEED0 (2·10^8, at most
# ~1.2·10^6 of them with fresh records on a GPU), its image pool below 10^8 and its monitoring sets from 9·10^8.
CONTINUE_SEED0 = 3 * 10**8
STAGE = "unified-continue"
# 1.4.0's held-out accuracy by question kind: where 53 %, colour 74 %, Describe 70 %, exists 90 %, shape 99 %,
# count and background 100 % (bench/results/eval.json): the weak kinds get most of the questions.
DEFAULT_QUESTION_WEIGHTS = "where=3,color=2.5,describe=1.5,exists=1.5,shape=0.5,count=0.5,background=0.5"


def parse_weights(text: str, kinds, flag: str):
    """"kind=weight,…" → dict (None for ""), every kind one of `kinds`."""
    if not text:
        return None
    weights = {}
    for part in text.split(","):
        kind, _, value = part.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = -1.0
        if kind not in kinds or weight < 0:
            raise SystemExit(f"{flag}: '{part}' is not kind=weight ≥ 0 (kinds: {', '.join(kinds)})")
        weights[kind] = weight
    if sum(weights.values()) <= 0:
        raise SystemExit(f"{flag}: every weight is 0")
    return weights


def draw_records(n: int, seed0: int, mix: dict, workers: int) -> list:
    """train_shapes.unified_records(n, seed0, mix), in `workers` processes: each record is a function of its seed
    alone, so the chunks join into the same list."""
    parts = chunked_map(functools.partial(_records_of_seeds, mix=mix), range(seed0, seed0 + n), workers)
    return [r for part in parts for r in part]


def _records_of_seeds(seeds: list, mix: dict) -> list:
    return T.unified_records(len(seeds), seeds[0], mix) if seeds else []


class GroupLoader:
    """The batch of each step, for a GPU: UnifiedBatches builds its batches in pure Python (~6 ms a batch of 48
    on one core, longer than a GPU step of this model), so worker processes build whole groups ahead, in order.
    Called with consecutive steps; any other step restarts the workers at that step's group."""

    class _Groups(torch.utils.data.Dataset):
        def __init__(self, batches):
            self.batches = batches

        def __getitem__(self, gi):
            # Pickled here, so the group travels through the worker's pipe: tensors would travel through
            # /dev/shm, which a container may keep too small for dozens of groups in flight.
            G = self.batches.G
            return pickle.dumps((gi, [[t.numpy() for t in self.batches.tensors(gi * G + j)] for j in range(G)]))

    def __init__(self, batches, workers: int, device: str):
        self.batches, self.workers, self.device = batches, workers, device
        self.groups, self.group, self.next_step = None, (None, []), None

    def __call__(self, step: int):
        G = self.batches.G
        if step != self.next_step:
            first = step // G
            loader = torch.utils.data.DataLoader(self._Groups(self.batches), batch_size=None,
                                                 sampler=range(first, first + 10**7), num_workers=self.workers,
                                                 prefetch_factor=4)
            self.groups, self.group = iter(loader), (None, [])
        while self.group[0] != step // G:
            self.group = pickle.loads(next(self.groups))
        self.next_step = step + 1
        return [torch.from_numpy(t).to(self.device) for t in self.group[1][step % G]]


def record_cache(run: Run, records: int, seed0: int, mix: dict, encoder, device: str, workers: int = 1) -> dict:
    """The continuation's records (seeds seed0, seed0 + 1, …) and their TA-Tok ids at every scale (built once,
    then read from OUT, which must have been built with the same records, seed and mix)."""
    path = run.path("continue-data.pt")
    drawn = {"records": records, "seed0": seed0, "mix": mix}
    if os.path.exists(path):
        data = torch_load(path)
        if data.get("drawn") != drawn:
            raise SystemExit(f"{path} holds records drawn as {data.get('drawn')}, not {drawn}: "
                             "resume with the same --records, --records-seed and --mix, or use another --out")
        return data
    t0 = time.time()
    recs = draw_records(records, seed0, mix, workers)
    with torch.no_grad():
        data = {"records": recs, "ids": T.encode_records(recs, encoder, device, workers), "drawn": drawn}
    torch.save(data, path)
    log(f"[{STAGE}] {len(recs)} records from seed {seed0} encoded in {time.time() - t0:.0f}s")
    return data


def train(run: Run, a, tok, llm, encoder, manifest) -> dict:
    data = record_cache(run, a.records, a.records_seed, a.mix, encoder, a.device, a.workers)
    P = T.prompt_helper(manifest, tok)
    pad = manifest["tokens"]["pad"]
    batches = T.UnifiedBatches(P, tok, data["records"], data["ids"], tok.token_id("<|im_end|>"), pad)
    llm.train()

    def batch_fn(step):
        return [t.to(a.device) for t in batches.tensors(step)]
    step_batch = GroupLoader(batches, a.workers, a.device) if a.workers > 1 else batch_fn

    def loss_fn(batch, step):
        x, y, pos = batch
        return masked_lm_loss(llm, x, y, a.device, a.bf16, pos), int((x != pad).sum()), f"T {x.shape[1]}"

    with torch.no_grad():       # where the bundle starts on records it has never seen (the log's first line)
        start_loss = float(loss_fn(batch_fn(0), 0)[0])
    log(f"[{STAGE}] the bundle's loss on the first batch: {start_loss:.4f}")
    info = T.train_loop(run, a, STAGE, {"llm": llm}, list(llm.parameters()), step_batch, loss_fn, a.lr,
                        every=10, warmup=a.warmup, plan=(a.steps, a.minutes))
    llm.eval()
    return {**info, "start_loss": round(start_loss, 4)}


def export(a, source: str, tok, llm, encoder, decoder, ardtok, vq, manifest) -> None:
    """The source bundle with the trained LLM, a new version and description, checked in onnxruntime-node."""
    manifest = {**manifest, "version": a.version,
                "description": f"{manifest['description']}; unified LLM trained {a.minutes:g} min further"
                               f"{' on ' + a.trained_on if a.trained_on else ''} (training/continue_unified.py)"}
    eb.derive_bundle(source, a.bundle, manifest, {"llm": lambda path: eb.export_llm(llm, path)})
    size = sum(os.path.getsize(os.path.join(a.bundle, f)) for f in os.listdir(a.bundle))
    log(f"[export] {a.bundle}: {size / 1e6:.1f} MB, version {a.version}")

    T.check_onnx_parity(TarPipeline(manifest, tok, llm, encoder, decoder, ardtok, vq), tok, a.bundle,
                        os.path.join(a.out, "golden"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="source", default=os.path.join(ROOT, "models", "tar-shapes"),
                    help="the bundle to continue")
    ap.add_argument("--out", required=True, help="run directory: record cache, checkpoints, times")
    ap.add_argument("--bundle", help="where the new bundle goes (replaced if it exists)")
    ap.add_argument("--version", help="the new bundle's manifest version")
    ap.add_argument("--minutes", type=float, default=60.0, help="training budget (wall clock)")
    ap.add_argument("--steps", type=int, default=12000, help="step cap")
    ap.add_argument("--lr", type=float, default=5e-4,
                    help="peak learning rate of the warm restart (the recipe's unified stage peaks at 1.5e-3)")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--records", type=int, default=60000)
    ap.add_argument("--records-seed", type=int, default=CONTINUE_SEED0,
                    help="seed of the first record (a second continuation draws records the first did not: "
                         f"{CONTINUE_SEED0} + 10^6, say)")
    ap.add_argument("--question-weights", default=DEFAULT_QUESTION_WEIGHTS,
                    help="kind=weight,… of the understanding rows' questions ('' for the recipe's: each record's "
                         "own question, uniform follow-ups); train_shapes.QUESTION_WEIGHTS")
    ap.add_argument("--mix", default="",
                    help="task=weight,… of the records (understand, generate, edit, multiturn; '' for the recipe's "
                         "train_shapes.U_MIX): a bundle that already meets its understanding targets can spend more "
                         "of its steps on writing images")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--workers", type=int, default=1,
                    help="processes that draw, render and batch the records (a GPU run: most of the host's cores)")
    ap.add_argument("--weights-out", help="write the trained LLM's weights here (.npz) instead of exporting a "
                                          "bundle: a GPU machine without Node, whose torch exports other graphs")
    ap.add_argument("--trained-on", default="", help="the machine that trained them, for the bundle's description "
                                                     "(with --from-weights: 'an NVIDIA H200', say)")
    ap.add_argument("--from-weights", help="skip training: export the bundle with the LLM weights of this .npz "
                                           "(a --weights-out of a run elsewhere)")
    ap.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    a = ap.parse_args()
    if not a.weights_out and not (a.bundle and a.version):
        ap.error("--bundle and --version are required unless --weights-out is given")
    T.QUESTION_WEIGHTS = parse_weights(a.question_weights, T.L.QUESTION_TEMPLATES, "--question-weights")
    a.mix = parse_weights(a.mix, T.U_MIX, "--mix") or T.U_MIX
    torch.set_num_threads(a.threads)
    torch.manual_seed(T.SEED)
    a.bf16 = a.precision == "bf16" or (a.precision == "auto" and bf16_available(a.device))
    a.step_scale, a.time_scale, a.partner_done = 1.0, 1.0, None
    log(f"[{STAGE}] from {a.source}: {a.minutes:g} min or {a.steps} steps at peak lr {a.lr:g}, "
        f"{'bf16 mixed' if a.bf16 else 'fp32'}, {a.threads} threads, question kinds {T.QUESTION_WEIGHTS or 'as recorded'}, task mix {a.mix}")
    run = Run(a.out)
    tok, llm, encoder, decoder, ardtok, vq, manifest = load_bundle(a.source)
    llm.to(a.device)
    encoder.to(a.device)
    t0 = time.time()
    trained = os.path.join(a.out, "llm.pt")
    if a.from_weights:
        llm.load_state_dict(load_state_npz(a.from_weights))
        log(f"[{STAGE}] weights from {a.from_weights}")
    elif os.path.exists(trained):
        llm.load_state_dict(torch_load(trained)["llm"])
        log(f"[{STAGE}] already trained: {trained}")
    else:
        info = train(run, a, tok, llm, encoder, manifest)
        atomic_save({"llm": llm.state_dict()}, trained)
        run.mark_done(STAGE, time.time() - t0, {**info, "from": a.source, "lr": a.lr, "records": a.records,
                                                "records_seed": a.records_seed, "question_weights": a.question_weights,
                                                "mix": a.mix})
    llm.to("cpu")
    encoder.to("cpu")
    if a.weights_out:
        save_state_npz(a.weights_out, llm.state_dict())
        log(f"[{STAGE}] weights written to {a.weights_out}")
        return
    export(a, a.source, tok, llm, encoder, decoder, ardtok, vq, manifest)


if __name__ == "__main__":
    main()
