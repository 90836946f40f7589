"""Golden outputs of the PyTorch reference for the LLM's `shared-edits` positions (dialect_tar/positions.py), on the
committed tiny random-weight bundle with `llm.positions` set to "shared-edits":

    training/py training/make_shared_edits_fixture.py      # writes tests/fixtures/golden/shared-edits.json

A conversation with an earlier edit (whose answer image shares its input's positions in the prompt) and a new edit
request; the greedy answer ids under both schemes, so the runtime's test can tell that the positions were applied.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dialect_tar.bundle_torch import load_bundle  # noqa: E402
from dialect_tar.reference import ImageRef, TarPipeline, Turn  # noqa: E402
from make_fixtures import BUNDLE, GOLDEN, margins  # noqa: E402


def main():
    torch.set_num_threads(2)
    tok, llm, enc, dec, ar, vq, manifest = load_bundle(BUNDLE)
    n = next(s["tokens"] for s in manifest["scales"] if s["scale"] == 2)
    first, earlier_answer, second = ([(7 * i + k) % manifest["tokens"]["imageCount"] for i in range(n)]
                                     for k in (3, 11, 29))
    history = [Turn("user", "make the circle red", ImageRef(2, first), "edit"),
               Turn("assistant", "", ImageRef(2, earlier_answer)),
               Turn("user", "move the square to the left", ImageRef(2, second), "edit")]
    case = {"history": [{"role": "user", "task": "edit", "text": history[0].text, "imageIds": first, "scale": 2},
                        {"role": "assistant", "imageIds": earlier_answer, "scale": 2}],
            "request": {"task": "edit", "text": history[2].text, "imageIds": second, "scale": 2}}
    for scheme in ("sequential", "shared-edits"):
        pipe = TarPipeline({**manifest, "llm": {**manifest["llm"], "positions": scheme}}, tok, llm, enc, dec, ar, vq)
        prompt = pipe.prompt_ids(history, "image", 2)
        answer, steps = pipe.generate_ids([prompt], "image", n)
        case[scheme] = {"promptIds": prompt, "positionIds": pipe.positions(prompt + answer[0]),
                        "imageIds": [t - pipe.image_base for t in answer[0]],
                        "minTop2Margin": margins(steps, pipe.image_base, pipe.image_base + pipe.image_count)}
    assert case["sequential"]["imageIds"] != case["shared-edits"]["imageIds"], "the schemes should answer differently"
    path = os.path.join(GOLDEN, "shared-edits.json")
    with open(path, "w") as f:
        json.dump({"format": "dialect-golden/1", "producedBy": "training/make_shared_edits_fixture.py", **case}, f)
        f.write("\n")
    print(path, {s: case[s]["imageIds"] for s in ("sequential", "shared-edits")})


if __name__ == "__main__":
    main()
