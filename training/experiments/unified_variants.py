"""The unified stage at equal steps under variants of its data choices, measured on scale-2 edits, generation and
questions. One variant per call.

The runtime encodes an edit's input at the output scale (src/model/tar-model.ts), so a served edit is "copy these 16
tokens but for the named change", and every evaluated figure is at scale 2. The choices a variant sets:

  --edit-same-scale  share of edit rows whose input has the output's scale (1.3.0: 0, the input scale drawn on its
                     own from UND_SCALES, so 36 % of edit rows were scale 2 → 2)
  --gen-scales       generation targets' scale weights, "2:0.7,1:0.1,3:0.2" (1.3.0). The loss is a mean over
                     tokens, so one scale-1 target (81 tokens) weighs as much as five scale-2 ones (16).
  --mix              the records' task mix, "understand:0.36,generate:0.32,edit:0.2,multiturn:0.12" (1.3.0)
  --und-scales       understanding (and edit) inputs' scale weights, "1:0.3,2:0.45,3:0.25" (1.3.0)
  --edit-positions   the LLM's position ids: sequential (1.3.0) or shared-edits (dialect_tar/positions.py)
  --fresh-records    new records for every group of batches instead of re-drawing the data cache's
  --lr               the unified stage's peak learning rate (1.3.0: 1.5e-3)
  --prompt-dropout   share of generate and edit rows trained with the unconditional prompt (1.3.0: 0)

Besides the figures below, the result holds the unified loss over one group of batches of records trained on and of
records never drawn (a gap says the stage memorises its records).

The variant runs train_shapes.py's own unified stage (same records, batches, loss and schedule; the module's
constants set to the variant) into a copy of a substrate run (data, tokenizer, llm-text, ta-tok and the unified data
cache; a variant with its own --mix builds its own cache from the same seeds), at a step cap with no time budget, so
that variants compare at equal steps. Then it measures the result on held-out monitoring seeds without a
de-tokenizer, through TA-Tok: the probe heads read the scene from the generated tokens, and the generated tokens are
compared with the TA-Tok tokens of the rendered answer.

  training/py training/train_shapes.py --out /tmp/exp/sub --bundle /tmp/exp/b --until ta-tok --lanes 1 --step-scale 0.3
  training/py training/experiments/unified_variants.py --substrate /tmp/exp/sub --prepare
  training/py training/experiments/unified_variants.py --substrate /tmp/exp/sub --out /tmp/exp/v13 \\
      --edit-same-scale 0 --gen-scales 2:0.7,1:0.1,3:0.2 --step-scale 0.16667 &
  training/py training/experiments/unified_variants.py --substrate /tmp/exp/sub --out /tmp/exp/v14 \\
      --edit-same-scale 0.75 --gen-scales 2:0.8,1:0.05,3:0.15 --step-scale 0.16667 &
  wait

Measured 2026-11-29 (substrate: text pre-training 180 steps, TA-Tok 1,800 steps reading 0.55 of scenes from scale-2
tokens; 2,000 unified steps per variant, fp32, one core each; 400 held-out items per measurement): 1.3.0's choices
against same-scale edits 0.75 with gen scales 2:0.8,1:0.05,3:0.15 — tokens an edit should keep, copied 54.0 / 55.6 %,
all edit tokens 41.8 / 42.9 %, everything else unchanged 12.0 / 14.3 %, change present 28.8 / 28.0 %, edits exact
0.3 / 1.3 %, one-object generation 21.4 / 17.1 % (140), 2–3 objects 0.4 / 0.0 %, questions 56.3 / 56.8 %. Nothing
beyond the noise of 400 items, so the recipe kept 1.3.0's (docs/model-card.md). A third variant, --mix
understand:0.28,generate:0.36,edit:0.26,multiturn:0.1 --threads 2 (1.3.0's scales): one-object generation 32.9 %
(2.2 standard errors above 1.3.0's choices), edits exact 2.3 %, questions 55.3 %, copying 54.8 %.

Measured 2026-11-29 evening, from a rebuilt substrate (same command; scale-2 probe 0.556), one core each:

  ... --out /tmp/exp/vctl --edit-same-scale 0.75 --gen-scales 2:0.8,1:0.05,3:0.15 --step-scale 0.16667
  ... --out /tmp/exp/vpos (the same) --edit-positions shared-edits
  ... --out /tmp/exp/vcomb (the same) --edit-positions shared-edits \
      --mix understand:0.28,generate:0.36,edit:0.26,multiturn:0.1
  ... --out /tmp/exp/vlr --mix understand:0.28,generate:0.36,edit:0.26,multiturn:0.1 --lr 3e-3 --step-scale 0.16667

sequential / shared / shared + mix: copied 49.5 / 70.8 / 73.4 %, everything else unchanged 8.3 / 35.0 / 35.0 %, change
present 29.5 / 24.0 / 25.8 %, edits exact 1.0 / 6.5 / 5.8 %, one-object generation 34.3 / 15.0 / 17.9 %, questions
61.0 / 56.8 / 51.3 %. The sequential control repeats the previous session's second variant, which measured
one-object 17.1 % and questions 56.8 %: between sessions one configuration varies far beyond the binomial error, so
only the edit figures (beyond every sequential run's range) are a measured effect, and the task mix's gain above is
not. --lr 3e-3: one-object 2.9 %, questions 52.5 % (worse). docs/model-card.md, "Runs that were not shipped".

Measured 2026-11-30 from a full run's substrate (train_shapes.py stopped once the unified data cache of 60,000
records was built: text 340 steps, TA-Tok 5,283 steps reading 0.796 of scenes from scale-2 tokens), 3,600 steps a
variant (--step-scale 0.3), bf16, one core each, at the same time:

  ... --substrate training/runs/r14 --out /tmp/exp/seq --edit-positions sequential --edit-same-scale 0 --step-scale 0.3
  ... --substrate training/runs/r14 --out /tmp/exp/shared --edit-positions shared-edits --edit-same-scale 0.75 \
      --step-scale 0.3

sequential / shared: edits exact 6.0 / 14.0 %, everything else unchanged 15.3 / 46.5 %, change present 36.3 / 29.3 %,
copied 50.4 / 73.7 %, one-object generation 53.6 / 67.1 % (140), 2–3 objects 1.9 / 5.8 %, questions 65.0 / 67.3 %.
Then, alone on its core, the shared variant with --prompt-dropout 0.1 (--out /tmp/exp/drop): edits exact 11.0 %,
everything else unchanged 43.0 %, change present 26.0 %, copied 72.2 %, one-object 57.9 %, 2–3 objects 3.1 %,
questions 73.0 % (greedy, without the prompt guidance that dropout trains for).
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import train_shapes as T  # noqa: E402
from substrate import copy_substrate  # noqa: E402
from train.common import labels_to_scene_dict, same_scene, satisfies, scene_labels  # noqa: E402

SUBSTRATE_FILES = ("pool.npz", "text.txt", "tokenizer.json", "llm-text.pt", "ta-tok.pt", "unified-data.pt",
                   "state.json", "times.json")
HELD_OUT = T.VAL_SEED0 + 7 * 10**6      # monitoring seeds (training range, never trained on), not quick_eval's


def parse_weights(text, key):
    """ "2:0.7,1:0.1" → {2: 0.7, 1: 0.1} (keys converted by `key`)."""
    return {key(k): float(v) for k, v in (kv.split(":") for kv in text.split(","))}


def prepare(substrate, records):
    """Build the unified stage's data cache once in the substrate (it depends only on the records and TA-Tok)."""
    a = argparse.Namespace(device="cpu", records=records)
    torch.set_num_threads(2)
    run = T.Run(substrate)
    tok, text_vocab = T.load_tok(run)
    enc, _, _ = T.load_tatok(run, T.make_configs(text_vocab), a.device)
    T.build_unified_cache(run, a, enc)


def load_trained(run):
    """A trained variant: tokenizer, manifest, prompt helper, TA-Tok (encoder, decoder, probe heads) and the LLM."""
    tok, text_vocab = T.load_tok(run)
    cfgs = T.make_configs(text_vocab)
    manifest = T.manifest_for(tok, cfgs)
    enc, dec, aux = T.load_tatok(run, cfgs, "cpu")
    llm = T.QwenLM(cfgs[0])
    llm.load_state_dict(T.torch_load(run.path("unified.pt"), map_location="cpu")["llm"])
    llm.eval()
    return argparse.Namespace(tok=tok, manifest=manifest, P=T.prompt_helper(manifest, tok), enc=enc, dec=dec,
                              aux=aux, llm=llm)


@torch.no_grad()
def generalisation_gap(v, batches, records, steps=T.UnifiedBatches.G):
    """The unified loss on the first `steps` training batches (trained on) and on as many batches of records that
    training never saw (same mix and settings, held-out seeds): a gap says the stage memorises its records. The
    default, one whole group of batches, spans every sequence length in both, so the two losses weigh the tasks
    alike (the first 8 batches of two groups do not: a group's batches are sorted by length, then shuffled)."""
    held = T.unified_records(records, HELD_OUT + 3 * 10**6)
    ids = T.encode_records(held, v.enc, "cpu")
    fresh = T.UnifiedBatches(batches.P, batches.tok, held, ids, batches.im_end_chat, batches.pad)

    def loss(b):
        losses = []
        for s in range(steps):
            x, y, pos = b.tensors(s)
            losses.append(float(T.masked_lm_loss(v.llm, x, y, "cpu", False, pos)))
        return float(np.mean(losses))
    return {"loss_trained_records": round(loss(batches), 4), "loss_new_records": round(loss(fresh), 4)}


def generate_tokens(llm, P, prompts, scale):
    """Image-token ids (0 … K-1) of greedy image answers at `scale`, one row per prompt."""
    outs = T.greedy_in_chunks(llm, P, prompts, "image", P.scale_tokens[scale], "cpu")
    return np.array([[t - P.image_base for t in o] for o in outs])


@torch.no_grad()
def measure(v, n):
    """Scale-2 edits and generation on held-out seeds, read through TA-Tok (no de-tokenizer involved)."""
    tok, P, enc, dec, aux, llm = v.tok, v.P, v.enc, v.dec, v.aux, v.llm

    def read(ids, scale):
        return aux.predict(dec(torch.from_numpy(ids).long()), scale).numpy()

    res = {}
    # edits, scale 2 → 2, as served
    eds = [T.D.example(HELD_OUT + i, type="edit", paraphrase=False) for i in range(n)]
    src = T.encode_all(enc, np.stack([T.render(T.Scene.from_json(r["scene"])) for r in eds]), "cpu")[2]
    tgt = T.encode_all(enc, np.stack([T.render(T.Scene.from_json(r["target"])) for r in eds]), "cpu")[2]
    prompts = [P.prompt_ids([T.Turn("user", r["instruction"], T.ImageRef(2, src[i].tolist()), "edit")], "image", 2)
               for i, r in enumerate(eds)]
    out = generate_tokens(llm, P, prompts, 2)
    pred, pred_tgt = read(out, 2), read(tgt.astype(np.int64), 2)
    true_src = np.stack([scene_labels(T.Scene.from_json(r["scene"])) for r in eds])
    true_tgt = np.stack([scene_labels(T.Scene.from_json(r["target"])) for r in eds])
    changed = true_src != true_tgt                      # background + 9 cells that the edit changes
    res["edit_exact"] = float(np.mean([same_scene(labels_to_scene_dict(p), r["target"]) for p, r in zip(pred, eds)]))
    res["edit_as_probe_reads_target"] = float(np.mean((pred == pred_tgt).all(1)))
    res["edit_change_present"] = float(np.mean([(p[c] == t[c]).all() for p, t, c in zip(pred, true_tgt, changed)]))
    res["edit_others_unchanged"] = float(np.mean([(p[~c] == t[~c]).all() for p, t, c in zip(pred, true_tgt, changed)]))
    res["edit_token_acc"] = float(np.mean(out == tgt))
    same = src == tgt
    res["edit_copy_acc"] = float(np.mean(out[same] == tgt[same]))     # tokens the edit should leave as they were
    # generation at scale 2, canonical prompts
    gens = [T.D.example(HELD_OUT + 10**6 + i, type="generate", paraphrase=False) for i in range(n)]
    prompts = [P.prompt_ids([T.Turn("user", r["prompt"], None, "generate")], "image", 2) for r in gens]
    pred = read(generate_tokens(llm, P, prompts, 2), 2)
    ok = [satisfies(labels_to_scene_dict(p), r["constraints"]) for p, r in zip(pred, gens)]
    one = [o for o, r in zip(ok, gens) if len(r["constraints"]["objects"]) == 1]
    multi = [o for o, r in zip(ok, gens) if len(r["constraints"]["objects"]) > 1]
    res["gen_one"], res["gen_multi"], res["gen_n_one"] = float(np.mean(one)), float(np.mean(multi)), len(one)
    # understanding at scale 2 (canonical questions; exact answer)
    und = [T.D.example(HELD_OUT + 2 * 10**6 + i, type="understand", paraphrase=False) for i in range(n)]
    ids = T.encode_all(enc, np.stack([T.render(T.Scene.from_json(r["scene"])) for r in und]), "cpu")[2]
    prompts = [P.prompt_ids([T.Turn("user", r["question"], T.ImageRef(2, ids[i].tolist()), "understand")], "text")
               for i, r in enumerate(und)]
    outs = T.greedy_in_chunks(llm, P, prompts, "text", 96, "cpu")
    res["understand_s2"] = float(np.mean([tok.decode(o).strip() == r["answer"] for o, r in zip(outs, und)]))
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in res.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--substrate", required=True, help="a train_shapes.py run with everything up to ta-tok done")
    ap.add_argument("--prepare", action="store_true", help="only build the unified data cache in the substrate")
    ap.add_argument("--records", type=int, default=30000, help="unified records of the data cache")
    ap.add_argument("--out", help="the variant's run directory (created)")
    ap.add_argument("--edit-same-scale", type=float, default=T.EDIT_SAME_SCALE)
    ap.add_argument("--gen-scales", default=",".join(f"{k}:{v}" for k, v in T.GEN_SCALES.items()))
    ap.add_argument("--und-scales", default=",".join(f"{k}:{v}" for k, v in T.UND_SCALES.items()),
                    help="understanding inputs' (and edit inputs') scale weights")
    ap.add_argument("--mix", help='record types of the unified data, "understand:0.36,generate:0.32,edit:0.2,'
                    'multiturn:0.12" (1.3.0); a variant with its own mix builds its own data cache')
    ap.add_argument("--edit-positions", choices=("sequential", "shared-edits"), default=T.EDIT_POSITIONS,
                    help="position ids of edit outputs (dialect_tar/positions.py)")
    ap.add_argument("--fresh-records", action="store_true", help="new records for every group of batches "
                    "(train_shapes.FRESH_RECORDS) instead of re-drawing the data cache's")
    ap.add_argument("--lr", type=float, default=T.U_LR, help="peak learning rate of the unified stage")
    ap.add_argument("--prompt-dropout", type=float, default=T.PROMPT_DROPOUT,
                    help="share of generate and edit rows trained with the unconditional prompt "
                    "(train_shapes.PROMPT_DROPOUT)")
    ap.add_argument("--threads", default="1", help="CPU threads of the variant's training")
    ap.add_argument("--step-scale", default="0.1", help="× the unified step cap (12,000): 0.1 = 1,200 steps")
    ap.add_argument("--n", type=int, default=400, help="held-out items per measurement")
    a = ap.parse_args()
    if not a.prepare and not a.out:
        ap.error("--out is required (unless --prepare)")
    if a.prepare:
        prepare(a.substrate, a.records)
        return
    copy_substrate(a.substrate, a.out, [n for n in SUBSTRATE_FILES if not (a.mix and n == "unified-data.pt")])
    T.EDIT_SAME_SCALE = a.edit_same_scale
    T.GEN_SCALES = parse_weights(a.gen_scales, int)
    T.UND_SCALES = parse_weights(a.und_scales, int)
    T.U_LR = a.lr
    T.EDIT_POSITIONS = a.edit_positions
    T.FRESH_RECORDS = a.fresh_records
    T.PROMPT_DROPOUT = a.prompt_dropout
    if a.mix:
        T.U_MIX = parse_weights(a.mix, str)
    torch.set_num_threads(int(a.threads))
    sys.argv = [T.__file__, "--out", a.out, "--bundle", os.path.join(a.out, "bundle"), "--stage", "unified",
                "--step-scale", a.step_scale, "--time-scale", "0", "--threads", a.threads,
                "--records", str(a.records)]
    T.main()
    with open(os.path.join(a.out, "times.json")) as f:
        info = json.load(f)["unified"]
    mix = ",".join(f"{k}:{v}" for k, v in T.U_MIX.items())
    run = T.Run(a.out)
    v = load_trained(run)
    batches = T.unified_batches(run, argparse.Namespace(device="cpu", records=a.records), v.P, v.tok, v.enc,
                                v.manifest)
    result = {"edit_same_scale": a.edit_same_scale, "gen_scales": a.gen_scales, "und_scales": a.und_scales,
              "lr": a.lr, "edit_positions": a.edit_positions, "fresh_records": a.fresh_records,
              "prompt_dropout": a.prompt_dropout, "mix": mix, **info,
              **generalisation_gap(v, batches, min(a.records, 3000)), **measure(v, a.n)}
    print("RESULT", json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
