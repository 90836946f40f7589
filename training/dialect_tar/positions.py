"""The LLM's position ids under the manifest's `llm.positions` = "shared-edits": an edit's output image reuses its
input image's positions (src/model/positions.ts is the runtime's copy of this rule).

With sequential positions, output image token i sits a prompt-dependent distance after input image token i (the
instruction's length varies), so copying the tokens an edit keeps must be learned as a content lookup. Reusing the
input's positions makes that distance 0 for every edit, a lookup that a rotary attention head expresses directly.

The rule is a function of the token ids alone, so training, the PyTorch reference and the runtime apply it to any
prompt, including conversations whose earlier answers were edits:
- positions are the token indices, except
- an image in an assistant turn whose preceding user turn holds an image of the same scale (same `<S_k>` token, so
  the same number of tokens): its i-th image token takes the position of that input image's i-th token. Images in
  user turns always keep their indices, so each edit in a conversation shares the positions of the image it was
  given.
Every other token, the `<im_end>` after a shared image included, keeps its index, so positions stay unique outside
shared images and a sequence's length still bounds its largest position.
"""
from typing import Callable, List, Sequence


class EditPositions:
    def __init__(self, turn_start: int, assistant_header: Sequence[int], im_start: int, scale_ids: Sequence[int],
                 image_base: int, image_count: int):
        """turn_start: the chat's `<|im_start|>` id; assistant_header: the ids of "<|im_start|>assistant\\n"."""
        self.turn_start, self.header = turn_start, list(assistant_header)
        self.im_start, self.scale_ids = im_start, set(scale_ids)
        self.image_lo, self.image_hi = image_base, image_base + image_count

    def __call__(self, ids: Sequence[int]) -> List[int]:
        """Position id of every token of `ids` (a prompt, or a prompt and the answer so far)."""
        ids = list(ids)
        pos = list(range(len(ids)))
        turns = [i for i, t in enumerate(ids) if t == self.turn_start]
        # (index of the first image token, scale token) of every image
        images = [(i + 2, ids[i + 1]) for i in range(len(ids) - 1)
                  if ids[i] == self.im_start and ids[i + 1] in self.scale_ids]
        for start, scale in images:
            own = [t for t in turns if t < start]
            if len(own) < 2 or ids[own[-1]:own[-1] + len(self.header)] != self.header:
                continue                                 # not in an assistant turn, or no turn before it
            user_turn, answer_turn = own[-2], own[-1]
            sources = [s for s, k in images if user_turn < s < answer_turn and k == scale]
            if not sources:
                continue
            src = sources[-1]
            i = 0
            while start + i < len(ids) and self.image_lo <= ids[start + i] < self.image_hi:
                if not self.image_lo <= ids[src + i] < self.image_hi:
                    break                                # the input image is shorter (cannot happen at one scale)
                pos[start + i] = pos[src + i]
                i += 1
        return pos


def sequential_positions(ids: Sequence[int]) -> List[int]:
    return list(range(len(ids)))


def position_rule(manifest: dict, tok) -> Callable[[Sequence[int]], List[int]]:
    """The rule of a bundle's `llm.positions` ("sequential" when absent)."""
    scheme = manifest["llm"].get("positions", "sequential")
    if scheme == "sequential":
        return sequential_positions
    if scheme != "shared-edits":
        raise ValueError(f"unknown llm.positions {scheme!r}")
    header = tok.encode(manifest["chat"]["turnStart"].replace("{role}", "assistant"))
    t = manifest["tokens"]
    return EditPositions(header[0], header, t["imStart"], t["scaleTokens"], t["imageBase"], t["imageCount"])
