"""Writes the committed test fixtures under tests/fixtures/shapes/ (seeds from dataset.FIXTURE_SEED_START):

  vocab.json     the vocabulary + position phrase variants (compared with src/shapes/vocab.ts)
  sheet.png      200 rendered scenes, 64x64 tiles, 20 per row, in scenes.json order
  scenes.json    [{"seed", "scene", "description"}] for the tiles
  language.json  {"prompts": [...], "questions": [...], "edits": [...]} sampled with paraphrases, for the TS parsers
  edits.png      N_EDIT_PAIRS edits rendered as (source, target) tile pairs, 20 tiles per row
  edits.json     [{"seed", "scene", "op", "instruction", "canonical_instruction", "target"}] for the pairs

    training/py -m shapes.fixtures [--out tests/fixtures/shapes]
"""
from __future__ import annotations

import argparse
import json
import os
import random

from PIL import Image

from . import language as L
from .dataset import FIXTURE_SEED_START
from .render import render_image
from .scene import Scene, sample_scene
from .vocab import IMAGE_SIZE, as_json

N_SCENES = 200
N_EDIT_PAIRS = 60
PER_ROW = 20


def vocab_fixture() -> dict:
    v = as_json()
    v["positionVariants"] = L.POSITION_VARIANTS
    return v


def write(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "vocab.json"), "w") as f:
        json.dump(vocab_fixture(), f, indent=1)
        f.write("\n")

    scenes = []
    rows = (N_SCENES + PER_ROW - 1) // PER_ROW
    sheet = Image.new("RGB", (PER_ROW * IMAGE_SIZE, rows * IMAGE_SIZE))
    for i in range(N_SCENES):
        seed = FIXTURE_SEED_START + i
        sc = sample_scene(random.Random(seed))
        scenes.append({"seed": seed, "scene": sc.to_json(), "description": L.describe(sc)})
        sheet.paste(render_image(sc), ((i % PER_ROW) * IMAGE_SIZE, (i // PER_ROW) * IMAGE_SIZE))
    sheet.save(os.path.join(out, "sheet.png"), format="PNG", optimize=True)
    with open(os.path.join(out, "scenes.json"), "w") as f:
        json.dump({"tile": IMAGE_SIZE, "perRow": PER_ROW, "items": scenes}, f, separators=(",", ":"))
        f.write("\n")

    rng = random.Random(FIXTURE_SEED_START + 10**5)
    prompts = []
    for i in range(300):
        g = L.generation_prompt(rng, full=None if i >= 20 else (i % 2 == 0), paraphrase=i % 5 != 0)
        prompts.append({"prompt": g["prompt"], "canonical_prompt": g["canonical_prompt"], "full": g["full"],
                        "constraints": g["constraints"]})
    questions = []
    for i in range(150):
        sc = sample_scene(rng)
        q = L.ask(sc, rng, None, paraphrase=True)
        questions.append({"scene": sc.to_json(), **q})
    edits = []
    for i in range(250):
        sc = sample_scene(rng)
        e = L.edit(sc, rng, L.EDIT_OPS[i % len(L.EDIT_OPS)], paraphrase=i % 3 != 0)
        if e is None:
            e = L.edit(sc, rng, None, paraphrase=i % 3 != 0)
        edits.append({"scene": sc.to_json(), **e})
    pairs = []
    sheet = Image.new("RGB", (PER_ROW * IMAGE_SIZE, (2 * N_EDIT_PAIRS + PER_ROW - 1) // PER_ROW * IMAGE_SIZE))
    for i in range(N_EDIT_PAIRS):
        seed = FIXTURE_SEED_START + 2 * 10**5 + i
        r = random.Random(seed)
        sc = sample_scene(r)
        e = L.edit(sc, r, L.EDIT_OPS[i % len(L.EDIT_OPS)], paraphrase=False) or L.edit(sc, r, None, paraphrase=False)
        pairs.append({"seed": seed, "scene": sc.to_json(), **e})
        for k, s2 in enumerate((sc, Scene.from_json(e["target"]))):
            t = 2 * i + k
            sheet.paste(render_image(s2), ((t % PER_ROW) * IMAGE_SIZE, (t // PER_ROW) * IMAGE_SIZE))
    sheet.save(os.path.join(out, "edits.png"), format="PNG", optimize=True)
    with open(os.path.join(out, "edits.json"), "w") as f:
        json.dump({"tile": IMAGE_SIZE, "perRow": PER_ROW, "items": pairs}, f, separators=(",", ":"))
        f.write("\n")
    with open(os.path.join(out, "language.json"), "w") as f:
        json.dump({"prompts": prompts, "questions": questions, "edits": edits}, f, separators=(",", ":"))
        f.write("\n")


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m shapes.fixtures")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.normpath(os.path.join(here, "..", "..", "tests", "fixtures", "shapes")))
    write(ap.parse_args().out)


if __name__ == "__main__":
    main()
