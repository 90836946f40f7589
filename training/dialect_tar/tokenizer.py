"""Byte-level BPE (GPT-2 / Qwen2 style): a small trainer, an encoder/decoder and a HuggingFace tokenizer.json writer.

Encoding follows the HuggingFace pipeline: split on added tokens (leftmost, longest), pre-tokenise every other
piece with the Qwen2 regex, map bytes to the GPT-2 printable alphabet, apply merges by rank.
"""
import json
from collections import Counter
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import regex

QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def bytes_to_unicode() -> Dict[int, str]:
    """GPT-2's reversible map from bytes to printable unicode characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_ENC = bytes_to_unicode()
BYTE_DEC = {v: k for k, v in BYTE_ENC.items()}
_PRETOK = regex.compile(QWEN2_PATTERN)


def tar_special_tokens(image_count: int) -> List[str]:
    """Tar's vocabulary layout after the text vocabulary."""
    return (["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<im_start>", "<im_end>", "<S0>", "<S1>", "<S2>"]
            + [f"<I{k}>" for k in range(image_count)])


def pretokenize(text: str) -> List[str]:
    return _PRETOK.findall(text)


def _byte_word(piece: str) -> str:
    return "".join(BYTE_ENC[b] for b in piece.encode("utf-8"))


class BPETokenizer:
    def __init__(self, vocab: Dict[str, int], merges: List[Tuple[str, str]], added: Sequence[str] = ()):
        self.vocab = dict(vocab)
        self.merges = list(merges)
        self.ranks = {m: i for i, m in enumerate(self.merges)}
        self.added: Dict[str, int] = {}
        nxt = max(self.vocab.values()) + 1
        for tok in added:
            self.added[tok] = nxt
            nxt += 1
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        self.id_to_token.update({i: t for t, i in self.added.items()})
        # leftmost match; at one position the longest alternative wins (sorted by length, descending)
        alts = sorted(self.added, key=len, reverse=True)
        self._added_re = regex.compile("|".join(regex.escape(a) for a in alts)) if alts else None
        self._cache: Dict[str, List[int]] = {}

    # ---------------------------------------------------------------- training
    @classmethod
    def train(cls, lines: Iterable[str], vocab_size: int, added: Sequence[str] = ()) -> "BPETokenizer":
        """vocab_size counts the text vocabulary only (256 bytes + merges); `added` tokens come after it."""
        words = Counter()
        for line in lines:
            for p in pretokenize(line):
                words[tuple(_byte_word(p))] += 1
        vocab = {BYTE_ENC[b]: b for b in range(256)}
        merges: List[Tuple[str, str]] = []
        words = dict(words)
        while len(vocab) < vocab_size:
            pairs = Counter()
            for w, c in words.items():
                for a, b in zip(w, w[1:]):
                    pairs[(a, b)] += c
            if not pairs:
                break
            best = max(pairs.items(), key=lambda kv: (kv[1], [-ord(ch) for ch in kv[0][0] + " " + kv[0][1]]))[0]
            new = best[0] + best[1]
            merges.append(best)
            if new not in vocab:
                vocab[new] = len(vocab)
            nw = {}
            for w, c in words.items():
                out, i = [], 0
                while i < len(w):
                    if i + 1 < len(w) and w[i] == best[0] and w[i + 1] == best[1]:
                        out.append(new)
                        i += 2
                    else:
                        out.append(w[i])
                        i += 1
                nw[tuple(out)] = nw.get(tuple(out), 0) + c
            words = nw
        return cls(vocab, merges, added)

    # ---------------------------------------------------------------- encoding
    @property
    def size(self) -> int:
        return len(self.id_to_token)

    def token_id(self, tok: str) -> int:
        return self.added[tok] if tok in self.added else self.vocab[tok]

    def _bpe(self, word: str) -> List[int]:
        hit = self._cache.get(word)
        if hit is not None:
            return hit
        parts = list(word)
        while len(parts) > 1:
            best, best_rank = None, None
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = i, r
            if best is None:
                break
            a, b = parts[best], parts[best + 1]
            out, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == a and parts[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            parts = out
        ids = [self.vocab[p] for p in parts]
        self._cache[word] = ids
        return ids

    def _encode_text(self, text: str) -> List[int]:
        ids: List[int] = []
        for p in pretokenize(text):
            ids.extend(self._bpe(_byte_word(p)))
        return ids

    def encode(self, text: str) -> List[int]:
        if self._added_re is None:
            return self._encode_text(text)
        ids: List[int] = []
        pos = 0
        for m in self._added_re.finditer(text):
            if m.start() > pos:
                ids.extend(self._encode_text(text[pos:m.start()]))
            ids.append(self.added[m.group(0)])
            pos = m.end()
        if pos < len(text):
            ids.extend(self._encode_text(text[pos:]))
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        out, buf = [], bytearray()
        for i in ids:
            t = self.id_to_token[int(i)]
            if t in self.added:
                out.append(buf.decode("utf-8", errors="replace"))
                buf = bytearray()
                out.append(t)
            else:
                buf.extend(BYTE_DEC[c] for c in t)
        out.append(buf.decode("utf-8", errors="replace"))
        return "".join(out)

    # ---------------------------------------------------------------- HF format
    def to_hf_json(self) -> dict:
        byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": [
                {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                 "normalized": False, "special": True}
                for t, i in sorted(self.added.items(), key=lambda kv: kv[1])
            ],
            "normalizer": None,
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": QWEN2_PATTERN}, "behavior": "Isolated", "invert": False},
                byte_level,
            ]},
            "post_processor": None,
            "decoder": byte_level,
            "model": {
                "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                "vocab": dict(sorted(self.vocab.items(), key=lambda kv: kv[1])),
                "merges": [f"{a} {b}" for a, b in self.merges],
            },
        }

    def save(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_hf_json(), f, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def load(cls, path: str) -> "BPETokenizer":
        with open(path, encoding="utf-8") as f:
            j = json.load(f)
        m = j["model"]
        merges = [tuple(x.split(" ", 1)) if isinstance(x, str) else tuple(x) for x in m["merges"]]
        tok = cls(m["vocab"], merges, ())
        for a in j.get("added_tokens", []):
            tok.added[a["content"]] = a["id"]
            tok.id_to_token[a["id"]] = a["content"]
        alts = sorted(tok.added, key=len, reverse=True)
        tok._added_re = regex.compile("|".join(regex.escape(a) for a in alts)) if alts else None
        return tok
