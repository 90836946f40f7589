"""Shared helpers of the shapes-world training run: run folder state, progress lines, schedules, scene labels,
device-aware training forwards of the dialect_tar modules, and a tiny pixel checker for monitoring."""
import contextlib
import fcntl
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from dialect_tar.layers import rope_cos_sin
from shapes.vocab import BACKGROUNDS, COLORS, POSITIONS, SHAPES, SIZES

BG_NAMES = list(BACKGROUNDS)
COLOR_NAMES = list(COLORS)
SIZE_NAMES = list(SIZES)
N_CELL_STATES = 1 + len(SHAPES) * len(COLOR_NAMES) * len(SIZE_NAMES)   # 0 = empty


# ---------------------------------------------------------------------------------------------------- run folder
class Run:
    def __init__(self, out: str):
        self.out = out
        os.makedirs(out, exist_ok=True)
        self.state_path = os.path.join(out, "state.json")
        self.times_path = os.path.join(out, "times.json")
        self.state = self._load(self.state_path, {"done": []})
        self.times = self._load(self.times_path, {})

    @staticmethod
    def _load(path, default):
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
        return default

    def path(self, name: str) -> str:
        return os.path.join(self.out, name)

    def done(self, stage: str) -> bool:
        return stage in self._load(self.state_path, {"done": []})["done"]

    @contextlib.contextmanager
    def _locked(self):
        """state.json and times.json under an exclusive lock, re-read first: the two training lanes (processes)
        each mark their own stages done."""
        with open(os.path.join(self.out, ".lock"), "w") as lk:
            fcntl.flock(lk, fcntl.LOCK_EX)
            self.state = self._load(self.state_path, {"done": []})
            self.times = self._load(self.times_path, {})
            yield
            for p, obj in ((self.state_path, self.state), (self.times_path, self.times)):
                tmp = p + ".tmp"
                with open(tmp, "w") as f:
                    json.dump(obj, f, indent=2)
                os.replace(tmp, p)

    def mark_done(self, stage: str, seconds: float, extra: dict = None):
        with self._locked():
            if stage not in self.state["done"]:
                self.state["done"].append(stage)
            rec = {"seconds": round(seconds, 1)}
            rec.update(extra or {})
            self.times[stage] = rec
            self.times["total_seconds"] = round(sum(v["seconds"] for k, v in self.times.items()
                                                    if isinstance(v, dict)), 1)

    def note(self, key: str, value):
        """A run-level figure in times.json (wall-clock time of the whole command, say)."""
        with self._locked():
            self.times[key] = value

    def undo(self, stage: str):
        with self._locked():
            if stage in self.state["done"]:
                self.state["done"].remove(stage)


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def bf16_available(device: str) -> bool:
    """Whether matrix products in bfloat16 are fast here: a CUDA GPU that supports it, or a CPU with AVX512-BF16
    or AMX (these machines' AMD EPYC: a linear layer runs 4.1× faster, 475 against 116 GFLOP/s, one thread). On
    CPUs without such units bfloat16 is emulated and slower than float32."""
    if device == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast(device: str, enabled: bool):
    """Mixed precision for a training forward: matrix products in bfloat16, weights, optimizer state and the loss
    in float32 (so checkpoints and exported graphs are float32 as before). A no-op when not enabled."""
    return torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=enabled)


def atomic_save(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def chunked_map(fn, items, workers: int, min_per_worker: int = 4) -> list:
    """[fn(chunk) for each of `workers` contiguous chunks of items], in forked processes and in order; [fn(items)]
    where one process will do (workers ≤ 1, or too few items to be worth the processes). fn must be picklable: a
    module-level function or a functools.partial of one."""
    items = list(items)
    if workers <= 1 or len(items) < min_per_worker * workers:
        return [fn(items)]
    import multiprocessing as mp
    step = -(-len(items) // workers)
    with mp.get_context("fork").Pool(workers) as pool:
        return pool.map(fn, [items[i:i + step] for i in range(0, len(items), step)])


def prefixed(states: dict) -> dict:
    """{"ar": {...}, "vq": {...}} → one flat state {"ar.k": v, "vq.k": v} (several modules in one .npz)."""
    return {f"{name}.{k}": v for name, state in states.items() for k, v in state.items()}


def unprefixed(weights: dict, name: str) -> dict:
    """The state of module `name` in a prefixed() dict."""
    return {k[len(name) + 1:]: v for k, v in weights.items() if k.startswith(name + ".")}


def save_state_npz(path, state):
    """A state dict as plain NumPy arrays: what a GPU machine's newer PyTorch writes, this one's reads as it is."""
    tmp = path + ".tmp.npz"
    np.savez(tmp, **{k: v.detach().float().cpu().numpy() if v.is_floating_point() else v.cpu().numpy()
                     for k, v in state.items()})
    os.replace(tmp, path)


def load_state_npz(path):
    with np.load(path) as arrays:
        return {k: torch.from_numpy(arrays[k].copy()) for k in arrays.files}


class Progress:
    """Progress in [0, 1] = max(step / steps, elapsed / budget); cosine LR on it; a progress line now and then."""

    def __init__(self, name, steps, minutes, elapsed=0.0, every=20):
        self.name, self.steps, self.budget = name, steps, minutes * 60.0
        self.elapsed0 = elapsed
        self.t0 = time.time()
        self.every = every
        self.ema = None
        self.last_step_t = time.time()

    def elapsed(self):
        return self.elapsed0 + time.time() - self.t0

    def frac(self, step):
        return min(1.0, max(step / self.steps, self.elapsed() / self.budget if self.budget > 0 else 0.0))

    def finished(self, step):
        return self.frac(step) >= 1.0

    def lr(self, step, base, warmup=50, floor=0.05):
        if step < warmup:
            return base * (step + 1) / warmup
        p = self.frac(step)
        return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))

    def tick(self, step, loss, items, extra=""):
        self.ema = loss if self.ema is None else 0.95 * self.ema + 0.05 * loss
        if step % self.every == 0:
            now = time.time()
            el = self.elapsed()
            p = max(self.frac(step), 1e-6)
            eta = el / p - el
            log(f"[{self.name}] step {step} loss {loss:.4f} ema {self.ema:.4f} {items:.0f}/s "
                f"elapsed {el / 60:.1f}m eta {eta / 60:.1f}m {extra}")


# ---------------------------------------------------------------------------------------------------- labels
def cell_state(obj) -> int:
    return 1 + (SHAPES.index(obj.shape) * len(COLOR_NAMES) + COLOR_NAMES.index(obj.color)) * len(SIZE_NAMES) \
        + SIZE_NAMES.index(obj.size)


def state_attrs(st: int):
    st -= 1
    size = st % len(SIZE_NAMES)
    st //= len(SIZE_NAMES)
    color = st % len(COLOR_NAMES)
    shape = st // len(COLOR_NAMES)
    return SHAPES[shape], COLOR_NAMES[color], SIZE_NAMES[size]


def scene_labels(scene) -> np.ndarray:
    """[10]: background index, then 9 cell states."""
    lab = np.zeros(10, dtype=np.int64)
    lab[0] = BG_NAMES.index(scene.background)
    for o in scene.objects:
        lab[1 + o.cell] = cell_state(o)
    return lab


def labels_to_scene_dict(lab):
    objs = []
    for c in range(9):
        if lab[1 + c]:
            sh, co, si = state_attrs(int(lab[1 + c]))
            objs.append({"shape": sh, "color": co, "size": si, "position": POSITIONS[c]})
    return {"background": BG_NAMES[int(lab[0])], "objects": objs}


def satisfies(scene: dict, constraints: dict) -> bool:
    from itertools import permutations
    if constraints.get("background") and constraints["background"] != scene["background"]:
        return False
    wanted = constraints["objects"]
    if len(wanted) != len(scene["objects"]):
        return False
    for perm in permutations(scene["objects"]):
        if all(all(w[k] is None or w[k] == o[k] for k in ("shape", "color", "size", "position"))
               for w, o in zip(wanted, perm)):
            return True
    return False


def same_scene(a: dict, b: dict) -> bool:
    key = lambda s: (s["background"], sorted((o["position"], o["shape"], o["color"], o["size"]) for o in s["objects"]))
    return key(a) == key(b)


# ---------------------------------------------------------------------------------------------------- forwards
def causal_mask(t, device):
    i = torch.arange(t, device=device)
    allowed = i[None, :] <= i[:, None]
    return torch.where(allowed, torch.zeros((), device=device), torch.full((), -1e9, device=device))[None, None]


def llm_hidden(llm, ids, pos=None):
    """Right-padded (or unpadded) sequences: causal attention, positions `pos` [B, T] (default 0..T-1)."""
    b, t = ids.shape
    dev = ids.device
    x = llm.embed_tokens(ids)
    if pos is None:
        pos = torch.arange(t, device=dev).unsqueeze(0).expand(b, t)
    cs = rope_cos_sin(pos, llm.cfg.head_dim, llm.cfg.rope_theta)
    mask = causal_mask(t, dev)
    z = torch.zeros(b, llm.cfg.kv_heads, 0, llm.cfg.head_dim, device=dev)
    for layer in llm.layers:
        x, _ = layer(x, mask, cs, z, z)
    return llm.norm(x)


def masked_lm_loss(llm, x, y, device, bf16, pos=None):
    """Mean cross-entropy of the LLM over the positions that have a target (y != -100; the unified stage's loss,
    only on assistant tokens). The head runs only at those positions: most of a row is context."""
    sel = y.reshape(-1) != -100
    with autocast(device, bf16):
        h = llm_hidden(llm, x, pos)
        logits = llm.head(h.reshape(-1, h.shape[-1])[sel])
    return F.cross_entropy(logits.float(), y.reshape(-1)[sel])


def corrupt_codes(codes, p, k, generator):
    """codes with each entry replaced by a uniform random code in [0, k) with probability p (AR-DTok input noise)."""
    noisy = torch.rand(codes.shape, generator=generator) < p
    return torch.where(noisy, torch.randint(0, k, codes.shape, generator=generator), codes)


def ar_train_logits(ar, codes, cond, inputs=None):
    """Teacher-forced logits [B, codes, K] predicting codes[:, i] from cond and inputs[:, :i] (default: the codes
    themselves; the AR-DTok stage passes partly corrupted codes, see AR_INPUT_NOISE in train_shapes.py)."""
    b, nc = cond.shape[0], cond.shape[1]
    dev = codes.device
    inputs = codes if inputs is None else inputs
    x = torch.cat([ar.cond_proj(cond), ar.tok_embeddings(inputs[:, :-1])], dim=1)
    t = x.shape[1]
    x = x + ar.pos_embeddings(torch.arange(t, device=dev)).unsqueeze(0)
    mask = causal_mask(t, dev)
    z = torch.zeros(b, ar.cfg.kv_heads, 0, ar.cfg.head_dim, device=dev)
    for layer in ar.layers:
        x, _ = layer(x, mask, None, z, z)
    return ar.output(ar.norm(x)[:, nc - 1:, :])


def ta_encode_z(enc, pixels, scale, with_pooled=False):
    """→ z [B, N, D] (normalised, before quantisation), cosine similarities [B, N, K], the codebook
    (and the pooled ViT features)."""
    x = enc.features(pixels)
    si = scale - 1
    rows = torch.nonzero(enc.pool_valid[si]).squeeze(1)
    m = enc.pool[si].index_select(0, rows)
    x = torch.matmul(m, x)
    z = F.normalize(enc.in_linear(enc.encode_task_layer(x)), p=2, dim=-1)
    cb = enc.codebook()
    if with_pooled:
        return z, z @ cb.t(), cb, x
    return z, z @ cb.t(), cb


def ta_decode_z(dec, zq):
    x = dec.patch_embed(dec.out_linear(zq)).float()   # the residual stream in fp32, also under bf16 autocast
    n = zq.shape[1]
    si = int((dec.scale_tokens == n).long().argmax())
    rows = torch.nonzero(dec.pos_valid[si]).squeeze(1)
    x = x + (dec.pos_resize[si].index_select(0, rows) @ dec.pos_embed).float()
    for blk in dec.blocks:
        x = blk(x)
    return dec.decode_task_layer(dec.post_layernorm(x))


def vq_quantize(vq, z):
    """Cosine quantiser: z [B, C, G, G] → normalised flat [B, G², C], codes [B, G²], normalised codebook."""
    b, c = z.shape[:2]
    flat = F.normalize(z.permute(0, 2, 3, 1).reshape(b, -1, c), dim=-1)
    cb = F.normalize(vq.codebook.weight, dim=-1)
    return flat, (flat @ cb.t()).argmax(-1), cb


def to_pixels(rgb_u8: np.ndarray, device) -> torch.Tensor:
    """uint8 [B, 64, 64, 3] → normalised [-1, 1] float [B, 3, 64, 64] (mean = std = 0.5)."""
    x = torch.from_numpy(rgb_u8).to(device).permute(0, 3, 1, 2).float() / 255.0
    return (x - 0.5) / 0.5


# ---------------------------------------------------------------------------------------------------- pixel checker
_PAL = np.array([COLORS[c] for c in COLOR_NAMES], dtype=np.float32)
_BGP = np.array([BACKGROUNDS[b] for b in BG_NAMES], dtype=np.float32)


def detect(rgb: np.ndarray) -> dict:
    """A rough pixel checker for monitoring (the official one is src/shapes/checker.ts): background = nearest to
    the median; per 3×3 cell, foreground pixels (> 48 from the background); colour = palette colour nearest to
    the median of the strongest half; size from the coverage extents; shape from fill ratio and centroid."""
    x = rgb.astype(np.float32)
    med = np.median(x.reshape(-1, 3), axis=0)
    bgi = int(np.argmin(((_BGP - med) ** 2).sum(1)))
    bg = _BGP[bgi]
    d = np.sqrt(((x - bg) ** 2).sum(-1))
    objs = []
    cell = 64 / 3
    for c in range(9):
        r, k = divmod(c, 3)
        y0, y1, x0, x1 = int(round(r * cell)), int(round((r + 1) * cell)), int(round(k * cell)), int(round((k + 1) * cell))
        dd = d[y0:y1, x0:x1]
        fg = dd > 48
        if fg.sum() < 12:
            continue
        px = x[y0:y1, x0:x1][fg]
        strong = px[dd[fg] >= np.median(dd[fg])]
        col = np.median(strong, axis=0)
        # colour: best blend b + a (c - b)
        best, bi = 1e18, 0
        for i, pc in enumerate(_PAL):
            v = pc - bg
            a = np.clip(((col - bg) @ v) / max(1e-6, v @ v), 0, 1.2)
            err = ((bg + a * v - col) ** 2).sum()
            if err < best:
                best, bi = err, i
        v = _PAL[bi] - bg
        alpha = np.clip(((x[y0:y1, x0:x1] - bg) @ v) / max(1e-6, v @ v), 0, 1)
        alpha[alpha < 0.15] = 0
        w = alpha.max(0).sum()
        h = alpha.max(1).sum()
        mass = alpha.sum()
        if mass < 18:
            continue
        fill = mass / max(1e-6, w * h)
        ys = np.arange(alpha.shape[0])[:, None]
        rows = np.nonzero(alpha.max(1) > 0.5)[0]
        top = rows[0] if len(rows) else 0
        cy = (alpha * ys).sum() / mass
        rel = (cy - top + 0.5) / max(1e-6, h)
        if fill > 0.9:
            shape = "square"
        elif fill < 0.65 or rel > 0.6:
            shape = "triangle"
        else:
            shape = "circle"
        size = "large" if (w + h) / 2 > 13 else "small"
        objs.append({"shape": shape, "color": COLOR_NAMES[bi], "size": size, "position": POSITIONS[c]})
    return {"background": BG_NAMES[bgi], "objects": objs}
