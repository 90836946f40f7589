"""Self-test of the Python half (run by tests/shapes/python.test.ts, or `training/py -m shapes.selftest [N]`):
records are deterministic and valid, questions are unambiguous and answered right, edits are valid, the training
stream refuses eval seeds, rendering is fast, and the committed fixtures are what the code writes now."""
from __future__ import annotations

import json
import os
import random
import re
import sys
import tempfile
import time

import numpy as np
from PIL import Image

from . import dataset, fixtures
from . import language as L
from .render import render
from .scene import Scene
from .vocab import COLORS, POSITION_PHRASES, SHAPES

_COLOR_Q = re.compile(r"^What color is the (\w+)\?$")
_SHAPE_Q = re.compile(r"^What shape is the (\w+) object\?$")
_WHERE_Q = re.compile(r"^Where is the (\w+) (\w+)\?$")
_EXISTS_Q = re.compile(r"^Is there an? (\w+) (\w+)\?$")


def check_question(scene: Scene, q: dict) -> None:
    """Re-derives the canonical answer from the canonical question and the scene alone."""
    cq, objs = q["canonical_question"], scene.objects
    if q["kind"] == "color":
        (shape,) = _COLOR_Q.match(cq).groups()
        hits = [o for o in objs if o.shape == shape]
        assert len(hits) == 1, cq
        assert q["answer"] == f"{hits[0].color}."
    elif q["kind"] == "shape":
        (color,) = _SHAPE_Q.match(cq).groups()
        hits = [o for o in objs if o.color == color]
        assert len(hits) == 1, cq
        assert q["answer"] == f"a {hits[0].shape}."
    elif q["kind"] == "where":
        color, shape = _WHERE_Q.match(cq).groups()
        hits = [o for o in objs if o.color == color and o.shape == shape]
        assert len(hits) == 1, cq
        assert q["answer"] == POSITION_PHRASES[hits[0].position] + "."
    elif q["kind"] == "exists":
        color, shape = _EXISTS_Q.match(cq).groups()
        assert color in COLORS and shape in SHAPES
        assert q["answer"] == ("yes." if any(o.color == color and o.shape == shape for o in objs) else "no.")
    elif q["kind"] == "count":
        assert q["answer"] == ["one.", "two.", "three."][len(objs) - 1]
    elif q["kind"] == "background":
        assert q["answer"] == f"{scene.background}."
    else:
        assert q["answer"] == L.describe(scene)


def check_edit(scene: Scene, e: dict) -> None:
    target = Scene.from_json(e["target"])
    assert not target.same_as(scene)
    src, dst = set(o.key() for o in scene.objects), set(o.key() for o in target.objects)
    if e["op"] == "background":
        assert src == dst and target.background != scene.background
        return
    assert target.background == scene.background
    gone, new = src - dst, dst - src
    if e["op"] == "add":
        assert not gone and len(new) == 1
    elif e["op"] == "remove":
        assert len(gone) == 1 and not new and len(target.objects) >= 1
    else:
        assert len(gone) == 1 and len(new) == 1
        (a,), (b,) = gone, new
        diff = [i for i in range(4) if a[i] != b[i]]
        assert diff == [{"recolor": 1, "resize": 2, "move": 3}[e["op"]]], (e, a, b)
        ref = e["canonical_instruction"].split(" the ", 1)[1]
        assert any(ref.startswith(r + " ") or ref == r for r in (a[0], f"{a[1]} {a[0]}")), e


def run(n: int = 3000) -> None:
    t0 = time.time()
    counts: dict[str, int] = {}
    for seed in range(n):
        rec = dataset.example(seed)
        assert rec == dataset.example(seed), "not deterministic"
        json.dumps(rec)
        counts[rec["type"]] = counts.get(rec["type"], 0) + 1
        t = rec["type"]
        if t == "understand":
            check_question(Scene.from_json(rec["scene"]), rec)
        elif t == "generate":
            assert L.satisfies(Scene.from_json(rec["scene"]), rec["constraints"])
        elif t == "edit":
            check_edit(Scene.from_json(rec["scene"]), rec)
        else:
            scenes = [Scene.from_json(s) for s in rec["scenes"]]
            current = None
            turns = rec["turns"]
            for i, turn in enumerate(turns):
                if turn["role"] == "user":
                    if "image" in turn:
                        current = turn["image"]
                    reply = turns[i + 1]
                    if turn["task"] == "understand":
                        check_question(scenes[current], {"kind": turn["kind"], "answer": reply["text"],
                                                         "canonical_question": turn["canonical_text"]})
                    elif turn["task"] == "edit":
                        check_edit(scenes[current], {"op": turn["op"], "canonical_instruction": turn["canonical_text"],
                                                     "target": rec["scenes"][reply["image"]]})
                elif "image" in turn:
                    current = turn["image"]
            assert rec["turns"][0]["role"] == "user" and len(rec["turns"]) % 2 == 0
    assert set(counts) == set(dataset.TYPES), counts
    for seed in range(dataset.EVAL_SEED_START, dataset.EVAL_SEED_START + 200):
        rec = dataset.example(seed, paraphrase=False, determined=True)
        if rec["type"] == "understand":
            assert rec["question"] == rec["canonical_question"]
        if rec["type"] == "multiturn":
            assert all(t.get("constraints") is None or t["text"] == t["canonical_text"] for t in rec["turns"])
    try:
        next(dataset.stream(0, dataset.TRAIN_SEED_LIMIT + 1))
        raise AssertionError("stream accepted eval seeds")
    except ValueError:
        pass
    rng = random.Random(7)
    scenes = [Scene.from_json(dataset.example(s, "understand")["scene"]) for s in range(500)]
    t1 = time.time()
    for sc in scenes:
        render(sc)
    per_min = len(scenes) / (time.time() - t1) * 60
    assert per_min > 20000, f"rendering too slow: {per_min:.0f}/min"
    del rng

    # The committed fixtures are what the code writes now.
    here = os.path.dirname(os.path.abspath(__file__))
    committed = os.path.normpath(os.path.join(here, "..", "..", "tests", "fixtures", "shapes"))
    with tempfile.TemporaryDirectory() as tmp:
        fixtures.write(tmp)
        for name in sorted(os.listdir(tmp)):
            a, b = os.path.join(tmp, name), os.path.join(committed, name)
            assert os.path.exists(b), f"fixture {name} missing: run training/py -m shapes.fixtures"
            if name.endswith(".png"):
                same = np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
            else:
                same = open(a).read() == open(b).read()
            assert same, f"fixture {name} is stale: run training/py -m shapes.fixtures"
    print(f"shapes selftest ok: {n} records {counts}, render {per_min:.0f} images/min, "
          f"{time.time() - t0:.1f}s")


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
