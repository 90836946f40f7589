"""PyTorch-eager side of `npm run bench:model`: the reference pipeline on the weights of a bundle.

    training/py training/bench_torch.py --bundle models/tar-shapes --image in.png --runs 20

Runs understand, generate and edit at concurrency 1 with greedy decoding (the TypeScript side of the benchmark
uses the same settings, so both do the same work and must produce the same tokens) and prints one JSON object:
per task, the end-to-end latencies in ms, the per-stage times of each run, and the tokens of the last run.
"""
import argparse
import json
import sys
import time

import numpy as np
import torch
from PIL import Image

from dialect_tar.bundle_torch import load_bundle
from dialect_tar.reference import ImageRef, TarPipeline, Turn


class Clock:
    """Accumulates wall time per stage of one request."""

    def __init__(self):
        self.stages = {}
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages[stage] = self.stages.get(stage, 0.0) + (now - self._t) * 1000
        self._t = now


def run_text(p: TarPipeline, prompts, max_new: int, clock: Clock):
    """Greedy text decoding, timed as prefill + decode. Several prompts are views of one image (the bundle's
    understanding.viewScales, src/model/views.ts): they decode together, each fed the token picked from the mean of
    their logits, as the runtime does."""
    logits, past, mask, _ = p.prefill(prompts)
    clock.lap("prefill")
    out = []
    n = len(prompts)
    for step in range(max_new):
        t = int(logits.mean(0).argmax())
        if t in p.eos:
            break
        out.append(t)
        if step == max_new - 1:
            break
        mask = torch.cat([mask, torch.ones(n, 1, dtype=torch.long)], dim=1)
        positions = p.next_positions([prompt + out for prompt in prompts]).view(n, 1)
        logits, past = p.llm(torch.tensor([[t]] * n), mask, positions, past)
    clock.lap("decode")
    return out


def run_image(p: TarPipeline, prompt, n: int, cfg: float, clock: Clock, unconditional=None, guidance: float = 1.0):
    """Greedy image tokens; with `unconditional` (the prompt ids of guidance's unconditional row), rows [prompt,
    unconditional] decode together, both fed the token picked from uncond + guidance · (cond − uncond), as the
    runtime does for sampling.image.cfgScale ≠ 1."""
    rows = [prompt] if unconditional is None else [prompt, unconditional]
    logits, past, mask, _ = p.prefill(rows)
    clock.lap("prefill")
    ids = []
    for step in range(n):
        scores = logits[0] if unconditional is None else logits[1] + guidance * (logits[0] - logits[1])
        t = int(scores[p.image_base:p.image_base + p.image_count].argmax()) + p.image_base
        ids.append(t - p.image_base)
        if step == n - 1:
            break
        mask = torch.cat([mask, torch.ones(len(rows), 1, dtype=torch.long)], dim=1)
        answer = [p.image_base + c for c in ids]     # the fed token's position: the bundle's rule (llm.positions)
        positions = p.next_positions([row + answer for row in rows]).view(len(rows), 1)
        logits, past = p.llm(torch.tensor([[t]] * len(rows)), mask, positions, past)
    clock.lap("decode")
    feats = p.image_features(ids)
    codes = p.ardtok_codes(feats, cfg)
    clock.lap("detokenize")
    pixels = p.vq_pixels(codes)
    clock.lap("vqDecode")
    return ids, codes[0], pixels


@torch.no_grad()
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--image", required=True, help="PNG at the bundle's image.inputSize")
    ap.add_argument("--understand-prompt", default="Describe the image.")
    ap.add_argument("--generate-prompt", default="a small blue square at the top left on a white background")
    ap.add_argument("--edit-prompt", default="make the square red")
    ap.add_argument("--scale", type=int, default=None)
    ap.add_argument("--max-new-tokens", type=int, default=None)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    tok, llm, enc, dec, ar, vq, manifest = load_bundle(a.bundle)
    p = TarPipeline(manifest, tok, llm, enc, dec, ar, vq)
    scale = a.scale or manifest["defaultScale"]
    n_tokens = p.scale_tokens[scale]
    cfg = manifest["sampling"]["detok"]["cfgScale"]
    guidance = manifest["sampling"]["image"].get("cfgScale", 1.0)
    unconditional_text = manifest["templates"].get("unconditionalPrompt", "")
    max_new = a.max_new_tokens or manifest["sampling"]["text"]["maxNewTokens"]
    rgb = np.asarray(Image.open(a.image).convert("RGB"))
    # How the bundle reads an image for a question (its understanding section; absent: defaultScale, no views).
    reading = manifest.get("understanding", {})
    read_scale = reading.get("scale", manifest["defaultScale"])
    view_scales = [s for s in dict.fromkeys(reading.get("viewScales", [])) if s != read_scale]
    # The scale an uploaded image is edited at (its editing section; absent: defaultScale), unless --scale names one,
    # as for the runtime's request.
    edit_scale = a.scale or manifest.get("editing", {}).get("scale", manifest["defaultScale"])

    def unconditional_row(image, out_scale):
        """Guidance's unconditional prompt ids (the request with the unconditional text; an edit keeps its image),
        or None when the bundle does not guide: then nothing is built inside the timed request."""
        if guidance == 1:
            return None
        task = "generate" if image is None else "edit"
        return p.prompt_ids([Turn("user", unconditional_text, image, task)], "image", out_scale)

    def understand():
        clock = Clock()
        pixels = p.normalise(rgb)
        views = [(s, p.encode_image(pixels, s)[0].tolist()) for s in [read_scale, *view_scales]]
        clock.lap("encode")
        prompts = [p.prompt_ids([Turn("user", a.understand_prompt, ImageRef(s, ids), "understand")], "text")
                   for s, ids in views]
        answer = run_text(p, prompts, max_new, clock)
        return clock, {"imageTokens": views[0][1], "answerIds": answer}

    def generate():
        clock = Clock()
        prompt = p.prompt_ids([Turn("user", a.generate_prompt, None, "generate")], "image", scale)
        ids, codes, _ = run_image(p, prompt, n_tokens, cfg, clock, unconditional_row(None, scale), guidance)
        return clock, {"imageTokens": ids, "codes": codes}

    def edit():
        clock = Clock()
        ids = p.encode_image(p.normalise(rgb), edit_scale)[0].tolist()
        clock.lap("encode")
        image = ImageRef(edit_scale, ids)
        prompt = p.prompt_ids([Turn("user", a.edit_prompt, image, "edit")], "image", edit_scale)
        out, codes, _ = run_image(p, prompt, p.scale_tokens[edit_scale], cfg, clock, unconditional_row(image, edit_scale),
                                  guidance)
        return clock, {"inputTokens": ids, "imageTokens": out, "codes": codes}

    report = {"threads": a.threads, "torch": torch.__version__, "scale": scale, "editScale": edit_scale, "cfgScale": cfg,
              "understanding": {"scale": read_scale, "viewScales": view_scales},
              "promptGuidance": guidance, "tasks": {}}
    for name, task in (("understand", understand), ("generate", generate), ("edit", edit)):
        for _ in range(a.warmup):
            task()
        latencies, stages, last = [], [], None
        for _ in range(a.runs):
            t0 = time.perf_counter()
            clock, last = task()
            latencies.append((time.perf_counter() - t0) * 1000)
            stages.append(clock.stages)
        report["tasks"][name] = {"latenciesMs": latencies, "stagesMs": stages, "last": last}
        print(f"pytorch {name}: p50 {sorted(latencies)[len(latencies) // 2]:.1f} ms", file=sys.stderr)
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
