"""Seeded example stream for training, and the held-out eval set writer.

Seed ranges (every record is a pure function of its seed: random.Random(seed)):
  training   [0, 10^9)            stream(), example()
  eval       [10^9, 2*10^9)       `python -m shapes.dataset eval --out DIR` (default 1000 records from 10^9)
  fixtures   [2*10^9, 2*10^9+10^6) tests/fixtures/shapes (python -m shapes.fixtures)

Records (JSON-ready dicts; scenes in scene.py's JSON form, jitter included):
  {"type": "understand", "seed", "scene", "kind", "question", "canonical_question", "answer"}
  {"type": "generate",   "seed", "prompt", "canonical_prompt", "full", "constraints", "scene"}
                                                             scene: a target meeting the constraints
  {"type": "edit",       "seed", "scene", "op", "instruction", "canonical_instruction", "target"}
  {"type": "multiturn",  "seed", "scenes": [scene, ...], "turns": [turn, ...]}
     user turn:      {"role": "user", "task": "understand"|"generate"|"edit", "text", "canonical_text",
                      "image": i (only when the user attaches scenes[i]), "kind" (understand only)}
     assistant turn: {"role": "assistant", "text"} or {"role": "assistant", "image": i}
     Questions and edits after the first turn refer to the latest image of the conversation.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
from typing import Iterator

from . import language as L
from .render import render_image
from .scene import Scene, sample_scene
from .vocab import as_json as vocab_json

TRAIN_SEED_LIMIT = 10**9
EVAL_SEED_START = 10**9
EVAL_SEED_LIMIT = 2 * 10**9
FIXTURE_SEED_START = 2 * 10**9

TYPES = ("understand", "generate", "edit", "multiturn")
DEFAULT_MIX = {"understand": 0.35, "generate": 0.3, "edit": 0.25, "multiturn": 0.1}


def _pick(rng: random.Random, mix: dict[str, float]) -> str:
    r = rng.random() * sum(mix.values())
    for k, w in mix.items():
        r -= w
        if r < 0:
            return k
    return next(iter(mix))


def understand_example(rng: random.Random, paraphrase: bool = True, kind: str | None = None) -> dict:
    scene = sample_scene(rng)
    q = L.ask(scene, rng, kind, paraphrase)
    while q is None:                       # `kind` impossible for this scene: resample the scene
        scene = sample_scene(rng)
        q = L.ask(scene, rng, kind, paraphrase)
    return {"type": "understand", "scene": scene.to_json(), **q}


def generate_example(rng: random.Random, paraphrase: bool = True, full: bool | None = None) -> dict:
    return {"type": "generate", **L.generation_prompt(rng, full=full, paraphrase=paraphrase)}


def edit_example(rng: random.Random, paraphrase: bool = True, op: str | None = None) -> dict:
    scene = sample_scene(rng)
    e = L.edit(scene, rng, op, paraphrase)
    while e is None:
        scene = sample_scene(rng)
        e = L.edit(scene, rng, op, paraphrase)
    return {"type": "edit", "scene": scene.to_json(), **e}


def multiturn_example(rng: random.Random, paraphrase: bool = True, determined: bool = False) -> dict:
    """2-4 exchanges. Starts either from a generation prompt (then asks about / edits the result) or from an image
    the user attaches (then asks / edits, with at least one edit). `determined`: generation prompts are full, so
    every later answer is fixed by the conversation (used by the eval set)."""
    scenes: list[dict] = []
    turns: list[dict] = []
    n = rng.randint(2, 4)
    if rng.random() < 0.4:
        g = L.generation_prompt(rng, full=True if determined else None, paraphrase=paraphrase)
        scenes.append(g["scene"])
        turns.append({"role": "user", "task": "generate", "text": g["prompt"],
                      "canonical_text": g["canonical_prompt"], "constraints": g["constraints"]})
        turns.append({"role": "assistant", "image": 0})
        plan = [("understand" if rng.random() < 0.6 else "edit") for _ in range(n - 1)]
        attach_first = False
    else:
        scenes.append(sample_scene(rng).to_json())
        plan = [("understand" if rng.random() < 0.5 else "edit") for _ in range(n)]
        if "edit" not in plan:
            plan[rng.randrange(1, n)] = "edit"
        attach_first = True
    for i, task in enumerate(plan):
        current = Scene.from_json(scenes[-1])
        user: dict = {"role": "user", "task": task}
        if task == "understand":
            q = L.ask(current, rng, None, paraphrase)
            user.update(text=q["question"], canonical_text=q["canonical_question"], kind=q["kind"])
            reply = {"role": "assistant", "text": q["answer"]}
        else:
            e = L.edit(current, rng, None, paraphrase)
            scenes.append(e["target"])
            user.update(text=e["instruction"], canonical_text=e["canonical_instruction"], op=e["op"])
            reply = {"role": "assistant", "image": len(scenes) - 1}
        if attach_first and i == 0:
            user["image"] = 0
        turns.append(user)
        turns.append(reply)
    return {"type": "multiturn", "scenes": scenes, "turns": turns}


def example(seed: int, type: str | None = None, paraphrase: bool = True, mix: dict[str, float] | None = None,
            determined: bool = False) -> dict:
    """The record for one seed (a pure function of its arguments)."""
    rng = random.Random(seed)
    t = type or _pick(rng, mix or DEFAULT_MIX)
    if t == "understand":
        rec = understand_example(rng, paraphrase)
    elif t == "generate":
        rec = generate_example(rng, paraphrase)
    elif t == "edit":
        rec = edit_example(rng, paraphrase)
    elif t == "multiturn":
        rec = multiturn_example(rng, paraphrase, determined)
    else:
        raise ValueError(f"unknown record type {t!r}")
    return {"type": t, "seed": seed, **{k: v for k, v in rec.items() if k != "type"}}


def stream(start: int = 0, stop: int = TRAIN_SEED_LIMIT, step: int = 1, mix: dict[str, float] | None = None,
           paraphrase: bool = True) -> Iterator[dict]:
    """Training records for seeds start, start+step, ... < stop (stop <= 10^9: the eval range is refused).
    Sharding: worker w of W uses stream(start=w, step=W)."""
    if stop > TRAIN_SEED_LIMIT or start < 0:
        raise ValueError(f"training seeds must lie in [0, {TRAIN_SEED_LIMIT})")
    for seed in range(start, stop, step):
        yield example(seed, mix=mix, paraphrase=paraphrase)


def record_scenes(rec: dict) -> list[dict]:
    """Every scene of a record, in a fixed order (what an eval writer renders)."""
    t = rec["type"]
    if t == "understand":
        return [rec["scene"]]
    if t == "generate":
        return [rec["scene"]]
    if t == "edit":
        return [rec["scene"], rec["target"]]
    return list(rec["scenes"])


def write_eval(out: str, count: int = 1000, seed_start: int = EVAL_SEED_START,
               mix: dict[str, float] | None = None) -> None:
    """Held-out eval set: OUT/eval.jsonl (one record a line, canonical wording, `images` = PNG paths relative to OUT,
    one per record_scenes entry), OUT/images/*.png, OUT/manifest.json."""
    if seed_start < EVAL_SEED_START or seed_start + count > EVAL_SEED_LIMIT:
        raise ValueError(f"eval seeds must lie in [{EVAL_SEED_START}, {EVAL_SEED_LIMIT})")
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    counts: dict[str, int] = {}
    with open(os.path.join(out, "eval.jsonl"), "w") as f:
        for seed in range(seed_start, seed_start + count):
            rec = example(seed, paraphrase=False, mix=mix or {t: 1.0 for t in TYPES}, determined=True)
            paths = []
            for i, sc in enumerate(record_scenes(rec)):
                rel = f"images/{seed}_{i}.png"
                render_image(Scene.from_json(sc)).save(os.path.join(out, rel), format="PNG")
                paths.append(rel)
            rec["images"] = paths
            counts[rec["type"]] = counts.get(rec["type"], 0) + 1
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"format": "shapes-eval/1", "seedStart": seed_start, "count": count, "types": counts,
                   "vocab": vocab_json()}, f, indent=2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m shapes.dataset")
    sub = ap.add_subparsers(dest="cmd", required=True)
    ev = sub.add_parser("eval", help="write the held-out eval set")
    ev.add_argument("--out", required=True)
    ev.add_argument("--count", type=int, default=1000)
    ev.add_argument("--seed-start", type=int, default=EVAL_SEED_START)
    sm = sub.add_parser("sample", help="print training records as JSONL")
    sm.add_argument("--start", type=int, default=0)
    sm.add_argument("--count", type=int, default=10)
    args = ap.parse_args(argv)
    if args.cmd == "eval":
        write_eval(args.out, args.count, args.seed_start)
        print(f"wrote {args.count} eval records to {args.out}", file=sys.stderr)
    else:
        for rec in stream(args.start, args.start + args.count):
            print(json.dumps(rec, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
