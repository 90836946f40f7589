"""PyTorch reference pipeline: exactly the algorithm the TypeScript runtime implements.

Prompt: ChatML from the manifest (`chat`, `templates`); an image inside a turn is `templates.image` with `{k}` =
scale-1 and `{tokens}` spliced as ids imageBase+code (never tokenised). The rendered conversation is a sequence of
text pieces and id splices; each maximal text piece is encoded whole by the tokenizer (no special tokens added).
Text answers: greedy until an eos id (eos not included in the answer) or max_new_tokens.
Image answers: prompt ends with `<|im_start|>assistant\n` + imageAnswerPrefix; exactly N tokens, each restricted
to imageBase…imageBase+K-1; `<im_end>` is appended by the runtime afterwards (for the history).
Detokenisation: TA-Tok decoder features → AR-DTok with CFG (rows [cond, zero-cond], logits
uncond + cfg·(cond−uncond)) → G² VQ codes → VQ decoder pixels in [0, 1].
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from .ar_dtok import ARDTok
from .llm import QwenLM
from .positions import position_rule
from .ta_tok import TaTokDecoder, TaTokEncoder
from .tokenizer import BPETokenizer
from .vq import VQVAE

Segment = Union[str, List[int]]


@dataclass
class ImageRef:
    scale: int
    ids: List[int]          # TA-Tok codes 0…K-1


@dataclass
class Turn:
    role: str                           # "user" or "assistant"
    text: str = ""                      # prompt / answer text
    image: Optional[ImageRef] = None    # user: the attached image; assistant: the generated image (rendered as
    #                                     imageAnswerPrefix + ids + <im_end>, whatever templates.image is)
    task: str = "understand"            # user turn with an image: "understand" or "edit"; without: "generate"


class TarPipeline:
    def __init__(self, manifest: dict, tokenizer: BPETokenizer, llm: QwenLM, encoder: TaTokEncoder,
                 decoder: TaTokDecoder, ardtok: ARDTok, vq: VQVAE):
        self.m = manifest
        self.tok = tokenizer
        self.llm, self.encoder, self.decoder, self.ardtok, self.vq = llm, encoder, decoder, ardtok, vq
        t = manifest["tokens"]
        self.image_base, self.image_count = t["imageBase"], t["imageCount"]
        self.eos = set(t["eos"])
        self.pad = t["pad"]
        self.scale_tokens = {s["scale"]: s["tokens"] for s in manifest["scales"]}
        self.positions = position_rule(manifest, tokenizer)
        for mod in (llm, encoder, decoder, ardtok, vq):
            mod.eval()

    # ------------------------------------------------------------------ images in
    def normalise(self, rgb: np.ndarray) -> torch.Tensor:
        """uint8 [S, S, 3] → float [1, 3, S, S], (x/255 - mean) / std."""
        im = self.m["image"]
        x = torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)
        mean = torch.tensor(im["mean"], dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(im["std"], dtype=torch.float32).view(1, 3, 1, 1)
        return (x - mean) / std

    @torch.no_grad()
    def encode_image(self, pixels: torch.Tensor, scale: int) -> torch.Tensor:
        return self.encoder(pixels, torch.tensor([scale], dtype=torch.long))

    # ------------------------------------------------------------------ prompts
    def image_segments(self, img: ImageRef) -> List[Segment]:
        tpl = self.m["templates"]["image"].replace("{k}", str(img.scale - 1))
        before, after = tpl.split("{tokens}")
        return [before, [self.image_base + int(c) for c in img.ids], after]

    def _fill(self, template: str, prompt: str, img: Optional[ImageRef]) -> List[Segment]:
        out: List[Segment] = []
        parts = template.split("{image}")
        for i, p in enumerate(parts):
            if i > 0:
                out.extend(self.image_segments(img))
            out.append(p.replace("{prompt}", prompt))
        return out

    def render(self, turns: Sequence[Turn], answer: str = "text", scale: int = 2) -> List[Segment]:
        """answer: "text" (ends after the assistant turn start) or "image" (+ imageAnswerPrefix)."""
        chat, tpl = self.m["chat"], self.m["templates"]
        segs: List[Segment] = []

        def turn(role: str, body: List[Segment]):
            segs.append(chat["turnStart"].replace("{role}", role))
            segs.extend(body)
            segs.append(chat["turnEnd"])

        if chat.get("system") is not None:
            turn("system", [chat["system"]])
        for t in turns:
            if t.role == "user":
                if t.image is not None:
                    body = self._fill(tpl["edit" if t.task == "edit" else "understand"], t.text, t.image)
                else:
                    body = self._fill(tpl["generate"], t.text, None)
            else:  # as the runtime renders it: the text, then an image as the model wrote it
                body = [t.text] if t.text else []
                if t.image is not None:
                    body += [tpl["imageAnswerPrefix"].replace("{k}", str(t.image.scale - 1)),
                             [self.image_base + int(c) for c in t.image.ids], [self.m["tokens"]["imEnd"]]]
                body = body or [""]
            turn(t.role, body)
        segs.append(chat["turnStart"].replace("{role}", "assistant"))
        if answer == "image":
            segs.append(tpl["imageAnswerPrefix"].replace("{k}", str(scale - 1)))
        return segs

    def encode_segments(self, segs: Sequence[Segment]) -> List[int]:
        ids: List[int] = []
        buf = ""
        for s in segs:
            if isinstance(s, str):
                buf += s
            else:
                if buf:
                    ids.extend(self.tok.encode(buf))
                buf = ""
                ids.extend(s)
        if buf:
            ids.extend(self.tok.encode(buf))
        return ids

    def prompt_ids(self, turns: Sequence[Turn], answer: str = "text", scale: int = 2) -> List[int]:
        return self.encode_segments(self.render(turns, answer, scale))

    # ------------------------------------------------------------------ LLM
    def left_pad(self, prompts: Sequence[Sequence[int]]):
        L = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), L), self.pad, dtype=torch.long)
        mask = torch.zeros((len(prompts), L), dtype=torch.long)
        pos = torch.zeros((len(prompts), L), dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, L - len(p):] = torch.tensor(p, dtype=torch.long)
            mask[i, L - len(p):] = 1
            pos[i, L - len(p):] = torch.tensor(self.positions(p), dtype=torch.long)
        return ids, mask, pos

    def next_positions(self, seqs: Sequence[Sequence[int]]) -> torch.Tensor:
        """[B] position ids of the last token of each sequence (prompt + answer so far): the one fed next."""
        return torch.tensor([self.positions(s)[-1] for s in seqs], dtype=torch.long)

    @torch.no_grad()
    def prefill(self, prompts: Sequence[Sequence[int]]):
        ids, mask, pos = self.left_pad(prompts)
        logits, past = self.llm(ids, mask, pos, self.llm.empty_past(len(prompts)))
        return logits, past, mask, pos[:, -1]

    def generate_ids(self, prompts: Sequence[Sequence[int]], mode: str, max_new: int, stop_on_eos: bool = True,
                     unconditional: Optional[Sequence[Sequence[int]]] = None, guidance: float = 1.0):
        """Greedy decoding for a batch (greedy_decode with the pipeline's LLM; prompt guidance when `unconditional`
        gives each row's unconditional prompt)."""
        return greedy_decode(self.llm, self, prompts, mode, max_new, stop_on_eos,
                             unconditional=unconditional, guidance=guidance)

    # ------------------------------------------------------------------ detokenisation
    @torch.no_grad()
    def image_features(self, ids: Sequence[int]) -> torch.Tensor:
        return self.decoder(torch.tensor([list(ids)], dtype=torch.long))

    @torch.no_grad()
    def ardtok_codes(self, features: torch.Tensor, cfg_scale: float) -> List[List[int]]:
        """features [B, Nc, C] → greedy VQ codes [B][G²] with classifier-free guidance."""
        b, nc, c = features.shape
        n_codes = self.ardtok.cfg.codes
        cond = torch.cat([features, torch.zeros_like(features)], dim=0)   # rows: cond…, uncond…
        bb = 2 * b
        mask = torch.ones(bb, nc, dtype=torch.long)
        pos = torch.arange(nc).unsqueeze(0).expand(bb, nc)
        empty_ids = torch.zeros(bb, 0, dtype=torch.long)
        logits, past = self.ardtok(empty_ids, cond, mask, pos, self.ardtok.empty_past(bb))
        empty_cond = torch.zeros(bb, 0, c)
        codes = []
        for i in range(n_codes):
            mixed = logits[b:] + cfg_scale * (logits[:b] - logits[b:])
            nxt = mixed.argmax(-1)                                           # [B]
            codes.append(nxt)
            if i == n_codes - 1:
                break
            mask = torch.ones(bb, nc + i + 1, dtype=torch.long)
            p = torch.full((bb, 1), nc + i, dtype=torch.long)
            logits, past = self.ardtok(torch.cat([nxt, nxt]).view(bb, 1), empty_cond, mask, p, past)
        return torch.stack(codes, dim=1).tolist()

    @torch.no_grad()
    def vq_pixels(self, codes: Sequence[Sequence[int]]) -> torch.Tensor:
        return self.vq.decode_codes(torch.tensor(codes, dtype=torch.long))

    # ------------------------------------------------------------------ tasks
    def understand(self, rgb: np.ndarray, question: str, scale: int = 2, max_new: int = 128,
                   history: Sequence[Turn] = ()) -> Dict:
        ids = self.encode_image(self.normalise(rgb), scale)[0].tolist()
        turns = list(history) + [Turn("user", question, ImageRef(scale, ids), "understand")]
        prompt = self.prompt_ids(turns, "text")
        ans, _ = self.generate_ids([prompt], "text", max_new)
        return {"image_ids": ids, "prompt": prompt, "answer_ids": ans[0], "answer": self.tok.decode(ans[0])}

    def generate(self, prompt_text: str, scale: int = 2, cfg_scale: float = 3.0,
                 history: Sequence[Turn] = ()) -> Dict:
        turns = list(history) + [Turn("user", prompt_text, None, "generate")]
        prompt = self.prompt_ids(turns, "image", scale)
        new, _ = self.generate_ids([prompt], "image", self.scale_tokens[scale])
        img = [t - self.image_base for t in new[0]]
        feats = self.image_features(img)
        codes = self.ardtok_codes(feats, cfg_scale)
        pixels = self.vq_pixels(codes)
        return {"prompt": prompt, "image_ids": img, "features": feats, "codes": codes[0], "pixels": pixels}


@torch.no_grad()
def greedy_decode(llm: QwenLM, pipe: TarPipeline, prompts: Sequence[Sequence[int]], mode: str, max_new: int,
                  stop_on_eos: bool = True, device: str = "cpu",
                  unconditional: Optional[Sequence[Sequence[int]]] = None, guidance: float = 1.0):
    """Greedy decoding of `prompts` (left-padded together) with `llm` and `pipe`'s prompt conventions. mode "text":
    argmax over the whole vocabulary, stop on eos; mode "image": argmax restricted to the image ids, exactly
    max_new tokens. Returns the new ids per row (text: without the eos) and the logits of every step [B, V].

    Prompt guidance (the bundle's sampling.image.cfgScale): `unconditional` holds one more prompt per row (guidance's
    unconditional row); both decode together, fed the same token, which is picked from
    uncond + guidance · (cond − uncond), and the returned logits are those mixed ones."""
    rows = list(prompts) + ([] if unconditional is None else list(unconditional))
    ids, mask, pos = (t.to(device) for t in pipe.left_pad(rows))
    b, n = len(prompts), len(rows)
    past = [(torch.zeros(n, llm.cfg.kv_heads, 0, llm.cfg.head_dim, device=device),) * 2 for _ in llm.layers]
    logits, past = llm(ids, mask, pos, past)
    seqs = [list(p) for p in rows]         # prompt + answer so far: the fed token's position follows from it
    out: List[List[int]] = [[] for _ in range(b)]
    done = [False] * b
    steps = []
    for step in range(max_new):
        if unconditional is not None:
            logits = logits[b:] + guidance * (logits[:b] - logits[b:])
        steps.append(logits)
        if mode == "image":
            nxt = logits[:, pipe.image_base:pipe.image_base + pipe.image_count].argmax(-1) + pipe.image_base
        else:
            nxt = logits.argmax(-1)
        for i in range(b):
            if done[i]:
                continue
            t = int(nxt[i])
            if mode == "text" and stop_on_eos and t in pipe.eos:
                done[i] = True
            else:
                out[i].append(t)
        if all(done) or step == max_new - 1:
            break
        fed = nxt if unconditional is None else torch.cat([nxt, nxt])
        mask = torch.cat([mask, torch.ones(n, 1, dtype=torch.long, device=device)], dim=1)
        for i in range(n):
            seqs[i].append(int(fed[i]))
        logits, past = llm(fed.view(n, 1), mask, pipe.next_positions(seqs).to(device).view(n, 1), past)
    return out, steps
