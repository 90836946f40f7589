"""Self-test of the GPU continuation's data plumbing, on the CPU (~15 s here):
`training/py training/test_gpu_continue.py`.

What a GPU run cannot check for itself, since it trains on whatever these produce: records drawn by worker
processes are the serial ones, GroupLoader hands out exactly UnifiedBatches' batches in step order (across group
boundaries, and after a jump back), weights survive the .npz trip, and a render on several processes is the serial
render. training/gpu_continue.sh with DIALECT_DRY_RUN=1 runs the whole command on the CPU."""
import os
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import continue_unified as C  # noqa: E402
import train_shapes as T  # noqa: E402
from dialect_tar.bundle_torch import load_bundle  # noqa: E402
from train.common import load_state_npz, save_state_npz  # noqa: E402


def main() -> None:
    tok, llm, enc, _, _, _, manifest = load_bundle(os.path.join(os.path.dirname(HERE), "models", "tar-shapes"))
    recs = C.draw_records(600, 303_000_000, T.U_MIX, 3)
    serial = T.unified_records(600, 303_000_000, T.U_MIX)
    assert [r["seed"] for r in recs] == [r["seed"] for r in serial] and recs == serial, "parallel records differ"

    seeds = range(5_000, 5_100)
    par, ser = T.render_pool(seeds, 3), T.render_pool(seeds)
    assert np.array_equal(par[0], ser[0]) and np.array_equal(par[1], ser[1]), "parallel render differs"

    ids = T.encode_records(recs, enc, "cpu", 2)
    batches = T.UnifiedBatches(T.prompt_helper(manifest, tok), tok, recs, ids, tok.token_id("<|im_end|>"),
                               manifest["tokens"]["pad"])
    loader = C.GroupLoader(batches, 2, "cpu")
    G = batches.G
    for step in list(range(0, 2 * G + 5)) + [5, 6, 3 * G + 1, 3 * G + 2]:
        got, want = loader(step), batches.tensors(step)
        assert all(torch.equal(x, y) for x, y in zip(got, want)), f"GroupLoader differs at step {step}"

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "llm.npz")
        save_state_npz(path, llm.state_dict())
        back = load_state_npz(path)
        assert back.keys() == llm.state_dict().keys()
        assert all(torch.equal(back[k], v) for k, v in llm.state_dict().items()), "npz weights differ"
    print("gpu continuation plumbing: all checks passed")


if __name__ == "__main__":
    main()
