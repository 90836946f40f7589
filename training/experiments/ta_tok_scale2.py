"""Which TA-Tok pooling and scale schedule keeps most of the scene in the 16 scale-2 tokens? One variant per call.

Every headline figure of the evaluation is measured at the default scale, 2, and each of them is bounded by how much
of the scene its 16 tokens carry (TA-Tok's probe read 69.6 % of held-out scenes from them in 1.2.0, against 98.3 %
from scale 1's 81 and 90.4 % from scale 3's 9). Two of the recipe's choices decide that share:

  --pool     "stride" pools 2×2 patches at scale 2 and drops the 9×9 grid's last row and column (a ninth of the
             image, where the bottom and right cells lie); "adaptive" covers the whole grid with overlapping
             3×3 windows (dialect_tar.ta_tok.pooling_matrix). Scales 1 and 3 are the same in both.
  --cycle    the scales TA-Tok trains in turn, one per step: "1,2,3" gives each a third of the steps.

The variant runs train_shapes.py's own ta-tok stage (same batches, loss and schedule), with the module's constants
set to the variant, into a copy of a substrate run's earlier stages, at a step cap with no time budget, so that
variants compare at equal steps; the stage's held-out probe (1,000 scenes) is the result:

  training/py training/train_shapes.py --out /tmp/exp/sub --bundle /tmp/exp/b --until llm-text --lanes 1
  training/py training/experiments/ta_tok_scale2.py --substrate /tmp/exp/sub --out /tmp/exp/stride --pool stride --cycle 1,2,3 &
  training/py training/experiments/ta_tok_scale2.py --substrate /tmp/exp/sub --out /tmp/exp/adaptive --pool adaptive --cycle 1,2,3,2 &
  wait
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import train_shapes as T  # noqa: E402
from substrate import copy_substrate  # noqa: E402

SUBSTRATE_FILES = ("pool.npz", "text.txt", "tokenizer.json", "llm-text.pt", "times.json")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--substrate", required=True, help="a train_shapes.py run with data, tokenizer and llm-text done")
    ap.add_argument("--out", required=True, help="the variant's run directory (created)")
    ap.add_argument("--pool", required=True, choices=["stride", "adaptive", "nested"])
    ap.add_argument("--cycle", required=True, help="scales trained in turn, e.g. 1,2,3 or 1,2,3,2")
    ap.add_argument("--step-scale", default="0.3", help="× the ta-tok step cap (6,000): 0.3 = 1,800 steps")
    a = ap.parse_args()
    copy_substrate(a.substrate, a.out, SUBSTRATE_FILES)
    T.POOL_MODE = a.pool
    T.TA_SCALE_CYCLE = tuple(int(s) for s in a.cycle.split(","))
    sys.argv = [T.__file__, "--out", a.out, "--bundle", os.path.join(a.out, "bundle"), "--stage", "ta-tok",
                "--step-scale", a.step_scale, "--time-scale", "0", "--threads", "1"]
    T.main()
    with open(os.path.join(a.out, "times.json")) as f:
        info = json.load(f)["ta-tok"]
    print("RESULT", json.dumps({"pool": a.pool, "cycle": a.cycle, **info}), flush=True)


if __name__ == "__main__":
    main()
