"""Golden outputs of the PyTorch reference for prompt guidance (the bundle's `sampling.image.cfgScale` with
`templates.unconditionalPrompt`), on the committed tiny random-weight bundle:

    training/py training/make_guidance_fixture.py      # writes tests/fixtures/golden/guidance.json

Greedy image ids of a generation at two guidance scales, and of an edit after an earlier edit under both position
schemes (the unconditional row has its own prompt, so its own positions), each with the unguided answer too, so
that the runtime's test can tell that guidance was applied.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dialect_tar.bundle_torch import load_bundle  # noqa: E402
from dialect_tar.reference import ImageRef, TarPipeline, Turn  # noqa: E402
from make_fixtures import BUNDLE, GOLDEN, margins  # noqa: E402

UNCONDITIONAL = ""      # what the shipped bundle uses (templates.unconditionalPrompt absent)


def main():
    torch.set_num_threads(2)
    tok, llm, enc, dec, ar, vq, manifest = load_bundle(BUNDLE)
    k = manifest["tokens"]["imageCount"]
    n2 = next(s["tokens"] for s in manifest["scales"] if s["scale"] == 2)
    first, earlier_answer, second = ([(5 * i + j) % k for i in range(n2)] for j in (2, 17, 41))
    cases = []

    def decode(pipe, turns, scale, guidance):
        """Greedy image ids of `turns` (the last one the request) with and without guidance."""
        n = next(s["tokens"] for s in manifest["scales"] if s["scale"] == scale)
        last = turns[-1]
        unconditional_turns = [*turns[:-1], Turn("user", UNCONDITIONAL, last.image, last.task)]
        prompt = pipe.prompt_ids(turns, "image", scale)
        unconditional = pipe.prompt_ids(unconditional_turns, "image", scale)
        guided, steps = pipe.generate_ids([prompt], "image", n, unconditional=[unconditional], guidance=guidance)
        plain, _ = pipe.generate_ids([prompt], "image", n)
        base = pipe.image_base
        return {"imageIds": [t - base for t in guided[0]], "unguidedImageIds": [t - base for t in plain[0]],
                "minTop2Margin": margins(steps, base, base + pipe.image_count)}

    sequential = TarPipeline(manifest, tok, llm, enc, dec, ar, vq)
    for scale, guidance in ((2, 4.0), (1, 1.5)):
        prompt = "a small blue square at the top left and a large red circle"
        got = decode(sequential, [Turn("user", prompt, None, "generate")], scale, guidance)
        cases.append({"task": "generate", "positions": "sequential", "guidance": guidance, "scale": scale,
                      "history": [], "request": {"text": prompt}, **got})

    history = [{"role": "user", "task": "edit", "text": "make the circle red", "imageIds": first, "scale": 2},
               {"role": "assistant", "imageIds": earlier_answer, "scale": 2}]
    turns = [Turn("user", "make the circle red", ImageRef(2, first), "edit"), Turn("assistant", "", ImageRef(2, earlier_answer)),
             Turn("user", "move the square to the left", ImageRef(2, second), "edit")]
    for scheme in ("sequential", "shared-edits"):
        pipe = TarPipeline({**manifest, "llm": {**manifest["llm"], "positions": scheme}}, tok, llm, enc, dec, ar, vq)
        got = decode(pipe, turns, 2, 8.0)
        cases.append({"task": "edit", "positions": scheme, "guidance": 8.0, "scale": 2, "history": history,
                      "request": {"text": turns[-1].text, "imageIds": second}, **got})

    for case in cases:
        assert case["imageIds"] != case["unguidedImageIds"], f"guidance should change the answer: {case}"
    path = os.path.join(GOLDEN, "guidance.json")
    with open(path, "w") as f:
        json.dump({"format": "dialect-golden/1", "producedBy": "training/make_guidance_fixture.py",
                   "unconditionalPrompt": UNCONDITIONAL, "cases": cases}, f)
        f.write("\n")
    print(path, [(c["task"], c["positions"], c["guidance"], c["minTop2Margin"]) for c in cases])


if __name__ == "__main__":
    main()
