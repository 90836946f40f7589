"""Does a bundle answer a question as well as its own description of the image would? Two probes on a tuning set's
understanding records (an eval set drawn from seeds other than eval/shapes', so the held-out figures stay held
out), greedy, the image read at scale 3 as the shipped model reads uploads, through the PyTorch reference:

  1. every question kind, asked directly and asked after the model's own "Describe the image." in the same chat
     (its description in context: does it use it?);
  2. "where" questions: the direct answer against the cell the model's description gives the asked object.

  training/py -m shapes.dataset eval --out /tmp/tune-full --count 2000 --seed-start 1500000000   (in training/)
  training/py training/experiments/question_reading.py --bundle models/tar-shapes --eval /tmp/tune-full

docs/training.md, "Continuing a bundle's unified stage", says what 1.4.0 measured and what it changed.
"""
import argparse
import collections
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from dialect_tar.bundle_torch import load_bundle  # noqa: E402
from dialect_tar.reference import ImageRef, TarPipeline, Turn  # noqa: E402

DESCRIBE = "Describe the image."
# "a small red circle at the top left, …": each object's "colour shape" and its cell.
OBJECT_CELL = re.compile(r"(?:small|large) (\w+ \w+) (?:at the|on the|in the) ([a-z ]+?)(?:,| and| on a)")
ASKED_OBJECT = re.compile(r"(red|green|blue|yellow|purple|orange|cyan) (circle|square|triangle)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default="models/tar-shapes")
    ap.add_argument("--eval", default="/tmp/tune-full", help="a tuning set (shapes.dataset eval --seed-start …)")
    ap.add_argument("--questions", type=int, default=300, help="probe 1: the first N non-describe questions")
    ap.add_argument("--where", type=int, default=80, help="probe 2: the first N where-questions")
    ap.add_argument("--scale", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(1)
    tok, llm, enc, dec, ar, vq, manifest = load_bundle(a.bundle)
    pipe = TarPipeline(manifest, tok, llm, enc, dec, ar, vq)
    with open(os.path.join(a.eval, "eval.jsonl")) as fh:
        records = [json.loads(line) for line in fh]

    def answer(turns):
        ids = pipe.generate_ids([pipe.prompt_ids(turns, "text")], "text", 64)[0][0]
        return tok.decode(ids).strip()

    def image(record):
        rgb = np.asarray(Image.open(os.path.join(a.eval, record["images"][0])).convert("RGB"))
        return ImageRef(a.scale, pipe.encode_image(pipe.normalise(rgb), a.scale)[0].tolist())

    readings = {}

    def read(record):
        """The record's image, the direct answer to its question and the model's description (once per record:
        both probes ask about the where-questions)."""
        if record["seed"] not in readings:
            img = image(record)
            readings[record["seed"]] = (img, answer([Turn("user", record["question"], img, "understand")]),
                                        answer([Turn("user", DESCRIBE, img, "understand")]))
        return readings[record["seed"]]

    understand = [r for r in records if r["type"] == "understand" and r["kind"] != "describe"]
    by_kind = collections.defaultdict(lambda: [0, 0, 0])
    with torch.no_grad():
        for r in understand[:a.questions]:
            img, direct, description = read(r)
            after = answer([Turn("user", DESCRIBE, img, "understand"), Turn("assistant", description),
                            Turn("user", r["question"], None, "generate")])
            row = by_kind[r["kind"]]
            row[0] += 1
            row[1] += direct == r["answer"]
            row[2] += after == r["answer"]
    print("probe 1: answers exactly right, asked directly / after the model's own description")
    for kind, (n, direct, after) in sorted(by_kind.items()):
        print(f"  {kind:10s} {n:4d}  {direct / n:.3f} / {after / n:.3f}")
    n = sum(r[0] for r in by_kind.values())
    print(f"  {'all':10s} {n:4d}  {sum(r[1] for r in by_kind.values()) / n:.3f} / "
          f"{sum(r[2] for r in by_kind.values()) / n:.3f}")

    where = [r for r in records if r["type"] == "understand" and r["kind"] == "where"][:a.where]
    direct_right = described_right = 0
    with torch.no_grad():
        for r in where:
            _, direct, description = read(r)
            asked = ASKED_OBJECT.search(r["question"])
            cell = re.sub(r"^(at|on|in) the ", "", r["answer"]).rstrip(".")
            cells = [c for obj, c in OBJECT_CELL.findall(description) if asked and obj == asked.group(0)]
            direct_right += direct == r["answer"]
            described_right += cell in cells
    print(f"probe 2: {len(where)} where-questions: direct answer right {direct_right / len(where):.3f}, "
          f"the model's description puts the object in the right cell {described_right / len(where):.3f}")


if __name__ == "__main__":
    main()
