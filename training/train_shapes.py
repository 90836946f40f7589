"""Train the default Dialect model, a miniature Tar on the shapes world, in the paper's stage order, export the
bundle to models/tar-shapes/ and check it.

    training/py training/train_shapes.py --out training/runs/shapes              # everything (resumes)
    training/py training/train_shapes.py --out ... --stage unified               # one stage (and redo it)
    training/py training/train_shapes.py --out ... --device cuda --time-scale 0  # GPU: step caps only
    training/py training/train_shapes.py --out /tmp/smoke --smoke                # minutes-long smoke run

Stages: data, tokenizer, llm-text, ta-tok, vq-vae, ar-dtok, unified, export, check. Every stage writes its
result into --out and is skipped once done; training stages checkpoint every minute and resume after a kill.
Each training stage stops at its step cap or its time budget (minutes × --time-scale), whichever comes first;
the cosine learning rate follows whichever is nearer. Measured per-stage times go to OUT/times.json.
See docs/model-card.md.
"""
import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
ROOT = os.path.dirname(HERE)

import export_bundle as eb  # noqa: E402
from dialect_tar.ar_dtok import ARDTok  # noqa: E402
from dialect_tar.config import ARDTokConfig, LLMConfig, TaTokConfig, VQConfig, to_dict  # noqa: E402
from dialect_tar.llm import QwenLM  # noqa: E402
from dialect_tar.reference import ImageRef, TarPipeline, Turn, greedy_decode  # noqa: E402
from dialect_tar.ta_tok import Codebook, TaTokDecoder, TaTokEncoder, pooling_matrix  # noqa: E402
from dialect_tar.tokenizer import BPETokenizer, tar_special_tokens  # noqa: E402
from dialect_tar.vq import VQVAE  # noqa: E402
from shapes import dataset as D  # noqa: E402
from shapes import language as L  # noqa: E402
from shapes.render import render  # noqa: E402
from shapes.scene import Scene, sample_scene  # noqa: E402
from dialect_tar.compat import torch_load
from dialect_tar.positions import position_rule  # noqa: E402
from train.common import (Run, Progress, log, atomic_save, autocast, bf16_available, chunked_map, scene_labels, labels_to_scene_dict, satisfies,  # noqa
                          same_scene, llm_hidden, masked_lm_loss, ar_train_logits, corrupt_codes, ta_encode_z, ta_decode_z, vq_quantize,
                          to_pixels, detect, N_CELL_STATES)

STAGES = ["data", "tokenizer", "llm-text", "ta-tok", "vq-vae", "ar-dtok", "unified", "export", "check"]
SEED = 20260
K = 256                 # TA-Tok codebook = image tokens
TEXT_VOCAB = 640        # BPE target (bytes + merges); the trainer stops earlier when no pair is left
VQ_K = 512
POOL_SEEDS = (0, 10**8)            # image pool: scene seeds POOL_SEEDS[0] + i (training range)
VAL_SEED0 = 9 * 10**8              # monitoring seeds: training range, never used for training
UNIFIED_SEED0 = 2 * 10**8          # unified records: dataset.example(seed) from here
CHAT_SYSTEM = None                 # no system turn: shorter sequences, same for train and serve

# defaults: (step cap, minutes on the 2-core CPU). On the CPU the stages run in two lanes of one core each (LANES):
# a = 5 + 38 + 64 (+ the unified data cache, ~4) ≈ 111 min, b = 36 + 6 + 46 (+ pool codes, ~2) ≈ 90 min, so the
# run fits the 2-hour goal with room for export and check. The budgets are sized for the slower machines this
# project trains on (half the step rate of the one that trained 1.1.0, docs/model-card.md): there TA-Tok and the
# VQ-VAE still reach the ~6,000 steps they need (scene fidelity plateaus there); on a fast machine they stop at
# their step caps early and the run ends sooner. Lane b finishes ~20 min before lane a, and the unified stage then
# takes its core (take_spare_core: 1.8× the tokens/s on two threads, experiments/unified_threads.py), the stage
# most figures depend on.
PLAN = {"llm-text": (600, 5), "ta-tok": (6000, 38), "vq-vae": (8000, 36), "vq-refine": (4000, 6),
        "ar-dtok": (12000, 46), "unified": (12000, 64)}
# TA-Tok trains one scale a step, in this order: scale 2, which every evaluated task uses by default, gets half the
# steps (with adaptive pooling below: scene from scale-2 tokens 0.388 → 0.567 at 1,800 steps, and scales 1 and 3
# no worse; experiments/ta_tok_scale2.py, docs/model-card.md).
TA_SCALE_CYCLE = (1, 2, 3, 2)
# AR-DTok: share of the teacher-forced input codes replaced by random codes (the targets stay). Greedy decoding
# feeds the model its own codes, and with pure teacher forcing one wrong code derails the rest of the image
# (1.1.0: 96 % of scenes survive the VQ, 67 % are readable from scale-2 tokens, but ~20 % survive 64 greedy codes).
# Measured at equal steps (1,000, same TA-Tok and VQ-VAE; docs/model-card.md): scale-2 round trip among images the
# VQ-VAE keeps 0.057 (0.0), 0.197 (0.5), 0.221 (1.0: the inputs carry nothing, a parallel predictor in AR form).
# 0.5 keeps the model autoregressive — it can still use a prefix it trusts — at the gain of the parallel one.
AR_INPUT_NOISE = 0.5
# TA-Tok pooling at scale 2: "stride" (the released Tar's, and 1.0.0–1.2.0's) drops the 9×9 grid's last row and
# column — a ninth of the image, where the bottom and right cells lie; "adaptive" covers the whole grid with
# overlapping windows (scales 1 and 3 are the same in both). Its first trial (1.0.0 era) read more of the scene from
# scale-2 tokens but had a broken de-tokenizer downstream; at equal steps, with the cycle above, it reads 0.567 of
# held-out scenes from them against stride's 0.388 (experiments/ta_tok_scale2.py).
# "nested" (the recipe's since 2026-11-30, after 1.7.0, which is "adaptive"): adaptive's scale-2 windows (patches
# 0–2, 2–4, 4–6, 6–8 of the 9×9 grid) straddle the scene's cells in the middle row and column, where 1.7.0 loses 105
# of the 109 attributes its scale-2 round trip loses (docs/model-card.md); "nested" keeps every window inside one
# cell (0–2, 3–4, 4–5, 6–8). At equal steps (1,800, the same substrate) its probe reads 0.761 of held-out scenes
# from scale-2 tokens against adaptive's 0.607 (scale 3: 0.780 / 0.583, scale 1: 0.927 / 0.895; one run each).
POOL_MODE = "nested"

# Batch sizes of the VQ-VAE (both phases) and the AR-DTok. The CPU recipe's; a GPU, where a step of these small
# models costs the same at 4× the batch, runs them larger (retrain_detok.py).
VQ_BATCH, AR_BATCH = 32, 64
AR_LR = 1.5e-3         # the AR-DTok's peak learning rate (a continuation of trained weights starts lower)
AR_SCALE_CYCLE = (2, 3, 2, 1)   # the AR-DTok's condition scale, one a step: the default scale 2 gets half

# Stage dependencies, and the two lanes the CPU run trains in parallel (one process and one core each: two
# single-threaded processes get more from 2 cores than one process with 2 threads, whose OpenMP threads spin).
NEEDS = {"data": [], "tokenizer": ["data"], "llm-text": ["tokenizer"], "ta-tok": ["llm-text"],
         "vq-vae": ["tokenizer"], "ar-dtok": ["ta-tok", "vq-vae"], "unified": ["ta-tok"],
         "export": ["unified", "ar-dtok"], "check": ["export"]}
LANES = {"a": ["data", "tokenizer", "llm-text", "ta-tok", "unified", "export", "check"], "b": ["vq-vae", "ar-dtok"]}


# ============================================================================================== configs
def make_configs(text_vocab: int):
    llm = LLMConfig(vocab_size=text_vocab + 8 + K, hidden=256, layers=4, heads=8, kv_heads=4, head_dim=32,
                    intermediate=768, rope_theta=10000.0, tie_embeddings=False, max_positions=1024)
    ta = TaTokConfig(codebook_size=K, code_dim=llm.hidden, input_size=64, encoder_size=72, patch=8, width=128,
                     layers=5, heads=4, mlp=256, select_layer=-2, pool_mode=POOL_MODE, dec_width=128, dec_layers=2, dec_heads=4,
                     dec_mlp=256, dec_pos_grid=9, feat_dim=128)
    ar = ARDTokConfig(codebook_size=VQ_K, cond_dim=ta.feat_dim, hidden=192, layers=4, heads=6, kv_heads=6,
                      head_dim=32, intermediate=512, codes=64, max_positions=ta.tokens(1) + 64)
    vq = VQConfig(codebook_size=VQ_K, code_dim=16, grid=8, output_size=64, channels=[16, 32, 64])
    return llm, ta, ar, vq


def manifest_for(tok, cfgs, cfg_scale=3.0, image_sampling=None, understanding=None, editing=None, self_check=None):
    llm_cfg, ta_cfg, ar_cfg, vq_cfg = cfgs
    m = eb.build_manifest(tok, llm_cfg, ta_cfg, ar_cfg, vq_cfg, name="tar-shapes", version="1.4.2",
                          description="Miniature Tar trained on the shapes world (training/train_shapes.py)",
                          image_template="<im_start><S{k}>{tokens}<im_end>", system=CHAT_SYSTEM,
                          cfg_scale=cfg_scale, default_scale=2, max_new_tokens=96)
    if understanding:               # how the runtime reads an uploaded image (src/model/views.ts)
        m["understanding"] = understanding
    if editing:                     # the scale an uploaded image is edited at (src/model/manifest.ts, editingOf)
        m["editing"] = editing
    if self_check:                  # how a request's self-check runs (src/model/self-check.ts, src/shapes/judge.ts)
        m["selfCheck"] = self_check
    if image_sampling:
        m["sampling"]["image"].update(image_sampling)
    m["sampling"]["detok"]["temperature"] = 0      # greedy AR-DTok with CFG (what the export stage measures)
    if EDIT_POSITIONS != "sequential":
        m["llm"]["positions"] = EDIT_POSITIONS
    if UNCONDITIONAL_PROMPT:        # absent means "" to the runtime
        m["templates"]["unconditionalPrompt"] = UNCONDITIONAL_PROMPT
    return m


def prompt_helper(manifest, tok):
    """The reference pipeline's prompt builder without models (train == serve), with `positions(ids)`: the position
    ids of a token sequence under EDIT_POSITIONS."""
    p = TarPipeline.__new__(TarPipeline)
    p.m, p.tok = manifest, tok
    t = manifest["tokens"]
    p.image_base, p.image_count = t["imageBase"], t["imageCount"]
    p.eos, p.pad = set(t["eos"]), t["pad"]
    p.scale_tokens = {s["scale"]: s["tokens"] for s in manifest["scales"]}
    p.positions = position_rule(manifest, tok)
    return p


# ============================================================================================== stage: data
def render_pool(seeds, workers=1):
    """Scenes of these seeds rendered: (uint8 images [N, 64, 64, 3], labels [N, 10]); on `workers` processes when
    there are many (a GPU run's pool of 10^5 images renders in seconds on 16 cores instead of a minute on one)."""
    parts = chunked_map(_render_seeds, seeds, workers)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _render_seeds(seeds):
    imgs = np.empty((len(seeds), 64, 64, 3), dtype=np.uint8)
    labs = np.empty((len(seeds), 10), dtype=np.int64)
    for i, s in enumerate(seeds):
        sc = sample_scene(random.Random(s))
        imgs[i] = render(sc)
        labs[i] = scene_labels(sc)
    return imgs, labs


def text_of(rec):
    """Every text of a record (for the tokenizer and the text pre-training)."""
    t = rec["type"]
    out = []
    if t == "understand":
        out += [rec["question"], rec["canonical_question"], rec["answer"], L.describe(Scene.from_json(rec["scene"]))]
    elif t == "generate":
        out += [rec["prompt"], L.describe(Scene.from_json(rec["scene"]))]
    elif t == "edit":
        out += [rec["instruction"], rec["canonical_instruction"], L.describe(Scene.from_json(rec["target"]))]
    else:
        for tu in rec["turns"]:
            if tu.get("text"):
                out.append(tu["text"])
            if tu.get("canonical_text"):
                out.append(tu["canonical_text"])
    return out


def stage_data(run, a):
    n = a.pool
    imgs, labs = render_pool(range(POOL_SEEDS[0], POOL_SEEDS[0] + n))
    vimgs, vlabs = render_pool(range(VAL_SEED0, VAL_SEED0 + 1000))
    np.savez(run.path("pool.npz"), images=imgs, labels=labs, val_images=vimgs, val_labels=vlabs)
    lines = []
    for s in range(a.text_records):
        lines += text_of(D.example(s))
    # plus chat-style Q/A lines, so that the text model also sees answers after questions
    with open(run.path("text.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    log(f"[data] pool {n} images, {len(lines)} text lines")
    return {"pool": n, "text_lines": len(lines)}


# ============================================================================================== stage: tokenizer
def stage_tokenizer(run, a):
    with open(run.path("text.txt")) as f:
        lines = f.read().splitlines()
    tok = BPETokenizer.train(lines[:60000], TEXT_VOCAB, tar_special_tokens(K))
    text_vocab = tok.token_id("<|endoftext|>")
    tok.save(run.path("tokenizer.json"))
    log(f"[tokenizer] text vocabulary {text_vocab}, total {tok.size}")
    return {"text_vocab": text_vocab, "vocab": tok.size}


def load_tok(run):
    tok = BPETokenizer.load(run.path("tokenizer.json"))
    return tok, tok.token_id("<|endoftext|>")


# ============================================================================================== training loop
def take_spare_core(a, stage):
    """Lane a, once lane b's process has ended: train on all the run's threads (checked once a minute). Two
    single-threaded lanes beat one two-threaded process while both have work, but a lone stage on one thread
    would leave a core idle (the unified stage: 5,412 → 9,876 tokens/s on two threads here,
    experiments/unified_threads.py)."""
    partner_done = getattr(a, "partner_done", None)
    if partner_done is None or torch.get_num_threads() >= a.threads or not partner_done():
        return
    torch.set_num_threads(a.threads)
    log(f"[{stage}] lane b has finished: now on {a.threads} threads")


def train_loop(run, a, name, modules, params, batch_fn, loss_fn, base_lr, wd=0.01, extra_state=None,
               every=20, warmup=50, clip=1.0, plan=None):
    """Generic resumable loop. modules: dict name → nn.Module (saved); batch_fn(step) → batch; loss_fn(batch,
    step) → (loss tensor, items, extra str); plan: (step cap, minutes), PLAN[name] unless given."""
    steps, minutes = plan or PLAN[name]
    steps = max(2, int(steps * a.step_scale))
    minutes = minutes * a.time_scale
    opt = torch.optim.AdamW(params, lr=base_lr, betas=(0.9, 0.95), weight_decay=wd)
    ck = run.path(f"{name}.partial.pt")
    step, elapsed = 0, 0.0
    if os.path.exists(ck):
        st = torch_load(ck, map_location=a.device)
        for k, m in modules.items():
            m.load_state_dict(st["modules"][k])
        opt.load_state_dict(st["opt"])
        step, elapsed = st["step"], st["elapsed"]
        if extra_state is not None and "extra" in st:
            extra_state.update(st["extra"])
        log(f"[{name}] resumed at step {step} ({elapsed / 60:.1f} min done)")
    prog = Progress(name, steps, minutes, elapsed, every)
    last_save = time.time()
    t_items, t_time = 0, time.time()
    while not prog.finished(step):
        lr = prog.lr(step, base_lr, warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        batch = batch_fn(step)
        loss, items, extra = loss_fn(batch, step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        t_items += items
        if step % every == 0:
            rate = t_items / max(1e-9, time.time() - t_time)
            t_items, t_time = 0, time.time()
            prog.tick(step, loss.item(), rate, f"lr {lr:.2e} {extra}")
        else:
            value = loss.item()     # .item(), not float(): PyTorch 2.x warns on float() of a tensor with a graph
            prog.ema = value if prog.ema is None else 0.95 * prog.ema + 0.05 * value
        step += 1
        if time.time() - last_save > 60:
            take_spare_core(a, name)
            atomic_save({"modules": {k: m.state_dict() for k, m in modules.items()}, "opt": opt.state_dict(),
                         "step": step, "elapsed": prog.elapsed(), "extra": extra_state or {}}, ck)
            last_save = time.time()
    log(f"[{name}] finished: {step} steps, {prog.elapsed() / 60:.1f} min, final ema loss {prog.ema:.4f}")
    return {"steps": step, "train_minutes": round(prog.elapsed() / 60, 2), "final_loss": round(prog.ema, 4)}


# ============================================================================================== stage: llm-text
def stage_llm_text(run, a):
    tok, text_vocab = load_tok(run)
    cfgs = make_configs(text_vocab)
    torch.manual_seed(SEED)
    llm = QwenLM(cfgs[0]).to(a.device)
    init_llm_(llm)
    with open(run.path("text.txt")) as f:
        lines = f.read().splitlines()
    eot = tok.token_id("<|endoftext|>")
    stream = []
    rng = random.Random(SEED)
    order = list(range(len(lines)))
    rng.shuffle(order)
    for i in order:
        stream += tok.encode(lines[i]) + [eot]
    stream = torch.tensor(stream, dtype=torch.long)
    T, B = 96, 48
    n_rows = len(stream) // T
    rows = stream[:n_rows * T].view(n_rows, T)
    log(f"[llm-text] {len(stream)} tokens, {n_rows} rows of {T}")

    def batch_fn(step):
        g = torch.Generator().manual_seed(SEED + step)
        return rows[torch.randint(0, n_rows, (B,), generator=g)].to(a.device)

    def loss_fn(x, step):
        with autocast(a.device, a.bf16):
            logits = llm.head(llm_hidden(llm, x[:, :-1]))
        loss = F.cross_entropy(logits.float().reshape(-1, llm.cfg.vocab_size), x[:, 1:].reshape(-1))
        return loss, x.numel(), ""

    info = train_loop(run, a, "llm-text", {"llm": llm}, list(llm.parameters()), batch_fn, loss_fn, 2e-3)
    # which text rows become the codebook: the K most frequent text tokens of the corpus (then the rest by id)
    cnt = Counter(stream.tolist())
    freq = [t for t, _ in cnt.most_common() if t < text_vocab]
    rest = [t for t in range(text_vocab) if t not in set(freq)]
    rows_k = (freq + rest)[:K]
    atomic_save({"llm": llm.state_dict(), "codebook_rows": rows_k}, run.path("llm-text.pt"))
    return info


def init_llm_(llm):
    for n, p in llm.named_parameters():
        if p.dim() >= 2:
            nn.init.normal_(p, std=0.02)
        elif n.endswith("bias"):
            nn.init.zeros_(p)
    with torch.no_grad():
        for layer in llm.layers:  # scaled residual projections
            layer.self_attn.o_proj.weight.mul_(1 / math.sqrt(2 * llm.cfg.layers))
            layer.mlp.down_proj.weight.mul_(1 / math.sqrt(2 * llm.cfg.layers))


# ============================================================================================== stage: ta-tok
class TaTokAux(nn.Module):
    """Training-only semantic heads: the TA-Tok decoder's features must reconstruct the scene (background and the
    content of each of the 3×3 cells). This plays the part of Tar's SigLIP2 feature-reconstruction target."""

    def __init__(self, cfg: TaTokConfig, feat_dim: int = None):
        super().__init__()
        self.readout = nn.ParameterList()
        g = cfg.grid
        patch_cell = torch.zeros(9, g * g)            # which of the 3×3 scene cells each encoder patch lies in
        for r in range(g):
            for c in range(g):
                patch_cell[(r * 3 // g) * 3 + c * 3 // g, r * g + c] = 1
        for s in cfg.scales:                          # start: each cell reads the tokens that pool its patches
            m = patch_cell @ pooling_matrix(g, s, cfg.pool_mode, max(cfg.scales)).t()
            self.readout.append(nn.Parameter(m / m.sum(1, keepdim=True).clamp(min=1e-6)))
        d = feat_dim or cfg.feat_dim
        self.cell = nn.Sequential(nn.Linear(2 * d, 256), nn.GELU(), nn.Linear(256, N_CELL_STATES))
        self.bg = nn.Sequential(nn.Linear(d, 128), nn.GELU(), nn.Linear(128, 3))
        self.cell_pos = nn.Parameter(torch.randn(9, d) * 0.02)

    def forward(self, feats, scale):
        r = self.readout[scale - 1]
        cells = torch.einsum("cn,bnd->bcd", r, feats)
        glob = feats.mean(1)
        cl = self.cell(torch.cat([cells + self.cell_pos, glob[:, None].expand_as(cells)], -1))
        return self.bg(glob), cl            # [B, 3], [B, 9, S]

    def loss(self, feats, scale, labels):
        bg, cl = self(feats, scale)
        return F.cross_entropy(bg, labels[:, 0]) + F.cross_entropy(cl.reshape(-1, cl.shape[-1]),
                                                                    labels[:, 1:].reshape(-1))

    @torch.no_grad()
    def predict(self, feats, scale):
        bg, cl = self(feats, scale)
        return torch.cat([bg.argmax(-1, keepdim=True), cl.argmax(-1)], 1)


def build_tatok(cfgs, codebook_rows, llm_state, device):
    ta_cfg = cfgs[1]
    cb = Codebook(K, ta_cfg.code_dim)
    with torch.no_grad():
        cb.codebook_embed.copy_(llm_state["embed_tokens.weight"][codebook_rows].cpu())
    cb.codebook_embed.requires_grad_(False)        # frozen rows of the LLM's text embedding table
    with torch.no_grad():                          # whitening init of the projection: codes spread on the sphere
        E = cb.codebook_embed
        mu = E.mean(0)
        cov = (E - mu).t() @ (E - mu) / E.shape[0] + 1e-3 * torch.eye(E.shape[1])
        ev, U = torch.linalg.eigh(cov)
        W = U @ torch.diag(ev.clamp(min=1e-4).rsqrt()) @ U.t()
        cb.codebook_proj.weight.copy_(W)
        cb.codebook_proj.bias.copy_(-W @ mu)
    enc, dec = TaTokEncoder(ta_cfg, cb), TaTokDecoder(ta_cfg, cb)
    with torch.no_grad():
        enc.pos_embed.normal_(std=0.02)
        dec.pos_embed.normal_(std=0.02)
    return enc.to(device), dec.to(device)


class LowRankVQ(nn.Module):
    """Training-time factorisation of the two projections that meet in the cosine lookup: codes and encoder
    outputs live in one r-dimensional subspace U (fixed, orthonormal columns) of the LLM's embedding space:
    codebook = normalise(U (V E + b)), z = normalise(U (W h + c)). Lookup in r dims (r = 16) keeps every code
    reachable (as in ViT-VQGAN's factorised codes). `materialise` writes the exact full-rank equivalents into
    Codebook.codebook_proj and TaTokEncoder.in_linear, so the exported graphs compute the same ids."""

    def __init__(self, E, width, r=16):
        super().__init__()
        d = E.shape[1]
        g = torch.Generator().manual_seed(SEED + 5)
        U, _ = torch.linalg.qr(torch.randn(d, r, generator=g))
        self.register_buffer("U", U)
        self.V = nn.Linear(d, r)
        self.W = nn.Linear(width, r)
        with torch.no_grad():   # V: whitened top-r principal directions of E
            mu = E.mean(0)
            cov = (E - mu).t() @ (E - mu) / E.shape[0]
            ev, vecs = torch.linalg.eigh(cov)
            top = vecs[:, -r:]
            Vw = (top / ev[-r:].clamp(min=1e-6).sqrt()).t()
            self.V.weight.copy_(Vw)
            self.V.bias.copy_(-Vw @ mu)

    def codes(self, E):
        return F.normalize(self.V(E), dim=-1)

    def z(self, h):
        return F.normalize(self.W(h), dim=-1)

    @torch.no_grad()
    def materialise(self, enc):
        U = self.U
        enc.codebook.codebook_proj.weight.copy_(U @ self.V.weight)
        enc.codebook.codebook_proj.bias.copy_(U @ self.V.bias)
        enc.in_linear.weight.copy_(U @ self.W.weight)
        enc.in_linear.bias.copy_(U @ self.W.bias)


def stage_ta_tok(run, a):
    tok, text_vocab = load_tok(run)
    cfgs = make_configs(text_vocab)
    lt = torch_load(run.path("llm-text.pt"), map_location="cpu")
    torch.manual_seed(SEED + 1)
    enc, dec = build_tatok(cfgs, lt["codebook_rows"], lt["llm"], a.device)
    aux = TaTokAux(cfgs[1]).to(a.device)
    aux_enc = TaTokAux(cfgs[1], cfgs[1].width).to(a.device)   # on the encoder's pooled features (before VQ)
    lr_vq = LowRankVQ(enc.codebook.codebook_embed.detach().cpu(), cfgs[1].width).to(a.device)
    with torch.no_grad():   # unit-variance decoder input from unit-norm codes
        nn.init.normal_(dec.out_linear.weight, std=1.0)
    pool = np.load(run.path("pool.npz"))
    imgs, labs = pool["images"], torch.from_numpy(pool["labels"])
    n = len(imgs)
    B = 64
    E = enc.codebook.codebook_embed

    def batch_fn(step):
        g = torch.Generator().manual_seed(SEED + 7 * step)
        idx = torch.randint(0, n, (B,), generator=g)
        return to_pixels(imgs[idx.numpy()], a.device), labs[idx].to(a.device), TA_SCALE_CYCLE[step % len(TA_SCALE_CYCLE)]

    def loss_fn(batch, step):
        px, lab, s = batch
        with autocast(a.device, a.bf16):   # the ViT trunks in bf16; pooling, quantiser and losses in fp32
            x = enc.features(px)
        x = x.float()
        rows = torch.nonzero(enc.pool_valid[s - 1]).squeeze(1)
        pooled = enc.pool[s - 1].index_select(0, rows) @ x
        z = lr_vq.z(enc.encode_task_layer(pooled))
        cb = lr_vq.codes(E)
        sims = z @ cb.t()
        idx = sims.argmax(-1)
        q = cb[idx]
        commit = ((z - q.detach()) ** 2).sum(-1).mean() * 0.25 + ((q - z.detach()) ** 2).sum(-1).mean()
        zq = (z + (q - z).detach()) @ lr_vq.U.t()
        with autocast(a.device, a.bf16):
            feats = ta_decode_z(dec, zq)
        feats = feats.float()
        sem = aux.loss(feats, s, lab)
        sem_enc = aux_enc.loss(pooled, s, lab)
        # codebook usage: high entropy of the batch-mean soft assignment, low per-token entropy
        p = torch.softmax(sims / a.ta_tau, -1)
        mean_p = p.reshape(-1, K).mean(0)
        ent = (mean_p * torch.log(mean_p + 1e-8)).sum() - 0.1 * (p * torch.log(p + 1e-8)).sum(-1).mean()
        loss = sem + 0.5 * sem_enc + commit + a.ta_entropy * ent
        used = len(torch.unique(idx))
        return loss, px.shape[0], f"sem {float(sem):.3f} enc {float(sem_enc):.3f} commit {float(commit):.4f} used {used}"

    params = [p for m in (enc, dec, aux, aux_enc, lr_vq) for p in m.parameters() if p.requires_grad]
    params = list({id(p): p for p in params}.values())
    info = train_loop(run, a, "ta-tok", {"enc": enc, "dec": dec, "aux": aux, "aux_enc": aux_enc, "lr_vq": lr_vq},
                      params, batch_fn, loss_fn, 1e-3)
    lr_vq.materialise(enc)
    # held-out accuracy of the scene read back from hard tokens, per scale
    enc.eval(), dec.eval(), aux.eval()
    vi, vl = pool["val_images"], torch.from_numpy(pool["val_labels"]).to(a.device)
    accs = {}
    with torch.no_grad():
        for s in (1, 2, 3):
            ids = enc(to_pixels(vi, a.device), torch.tensor([s], device=a.device))
            pred = aux.predict(dec(ids), s)
            accs[f"scene_acc_s{s}"] = round(float((pred == vl).all(1).float().mean()), 4)
            accs[f"codes_used_s{s}"] = int(len(torch.unique(ids)))
    log(f"[ta-tok] held-out scene accuracy from tokens: {accs}")
    atomic_save({"enc": enc.state_dict(), "dec": dec.state_dict(), "aux": aux.state_dict(),
                 "codebook_rows": lt["codebook_rows"]}, run.path("ta-tok.pt"))
    info.update(accs)
    return info


def load_tatok(run, cfgs, device):
    st = torch_load(run.path("ta-tok.pt"), map_location="cpu")
    lt = torch_load(run.path("llm-text.pt"), map_location="cpu")
    enc, dec = build_tatok(cfgs, st["codebook_rows"], lt["llm"], device)
    enc.load_state_dict(st["enc"])
    dec.load_state_dict(st["dec"])
    aux = TaTokAux(cfgs[1]).to(device)
    aux.load_state_dict(st["aux"])
    for m in (enc, dec, aux):
        m.eval()
    return enc, dec, aux


@torch.no_grad()
def encode_all(enc, imgs, device, bs=256):
    """uint8 images → ids per scale: dict s → int16 [N, tokens]."""
    out = {1: [], 2: [], 3: []}
    for i in range(0, len(imgs), bs):
        px = to_pixels(imgs[i:i + bs], device)
        x = enc.features(px)
        for s in (1, 2, 3):
            si = s - 1
            rows = torch.nonzero(enc.pool_valid[si]).squeeze(1)
            h = enc.pool[si].index_select(0, rows) @ x
            z = F.normalize(enc.in_linear(enc.encode_task_layer(h)), p=2, dim=-1)
            out[s].append((z @ enc.codebook().t()).argmax(-1).to(torch.int16).cpu())
    return {s: torch.cat(v).numpy() for s, v in out.items()}


# ============================================================================================== stage: vq-vae
def stage_vq_vae(run, a):
    tok, text_vocab = load_tok(run)
    cfgs = make_configs(text_vocab)
    torch.manual_seed(SEED + 2)
    vq = VQVAE(cfgs[3]).to(a.device)
    with torch.no_grad():
        vq.codebook.weight.copy_(F.normalize(torch.randn(VQ_K, cfgs[3].code_dim), dim=-1))
    pool = np.load(run.path("pool.npz"))
    imgs, labs = pool["images"], pool["labels"]
    from train.common import _BGP
    bgs = torch.from_numpy(_BGP / 255.0).float()
    n, B = len(imgs), VQ_BATCH
    usage = {"count": torch.zeros(VQ_K)}

    def batch_fn(step):
        g = torch.Generator().manual_seed(SEED + 11 * step)
        idx = torch.randint(0, n, (B,), generator=g).numpy()
        x = torch.from_numpy(imgs[idx]).to(a.device).permute(0, 3, 1, 2).float() / 255.0
        bg = bgs[torch.from_numpy(labs[idx, 0])].to(a.device)[:, :, None, None]
        return x, bg

    def loss_fn(batch, step):
        x, bg = batch
        if "restart" in usage:          # dead codes found at the previous step (applied before this forward)
            dead, src = usage.pop("restart")
            with torch.no_grad():
                vq.codebook.weight[dead] = src
        z = vq.encoder(x * 2 - 1)
        flat, codes, cb = vq_quantize(vq, z)
        q = cb[codes]
        vql = F.mse_loss(q, flat.detach()) + 0.25 * F.mse_loss(flat, q.detach())
        b, c, g, _ = z.shape
        zq = (flat + (q - flat).detach()).transpose(1, 2).reshape(b, c, g, g)
        rec = vq.decoder(zq)
        w = 1.0 + 4.0 * ((x - bg).abs().sum(1, keepdim=True) > 0.1).float()
        loss = (w * ((rec - x).abs() + (rec - x) ** 2)).mean() + vql
        with torch.no_grad():
            usage["count"] += torch.bincount(codes.reshape(-1).cpu(), minlength=VQ_K).float()
            if step % 100 == 99:      # restart dead codes at random encoder outputs
                dead = (usage["count"] == 0).nonzero().squeeze(1)
                if len(dead):
                    src = flat.reshape(-1, c)[torch.randint(0, flat.shape[0] * flat.shape[1], (len(dead),))]
                    usage["restart"] = (dead.to(a.device), src.detach() + 0.01 * torch.randn_like(src))
                usage["count"].zero_()
        mse = ((rec - x) ** 2).mean().item()
        return loss, B, f"mse {mse:.4f}"

    info = train_loop(run, a, "vq-vae", {"vq": vq}, list(vq.parameters()), batch_fn, loss_fn, 2e-3, wd=0.0)
    with torch.no_grad():
        vq.codebook.weight.copy_(F.normalize(vq.codebook.weight, dim=-1))   # decode_codes = normalised entries
    vq.eval()
    info.update(vq_held_out(vq, pool, a.device))
    log(f"[vq-vae] {info}")
    atomic_save({"vq": vq.state_dict()}, run.path("vq-vae.pt"))
    steps, minutes = PLAN["vq-refine"]
    if minutes > 0:     # phase 2; kept only when the pixel checker finds more scenes intact afterwards
        before = {"vq": {k: v.clone() for k, v in vq.state_dict().items()}}
        info.update(refine_vq_decoder(run, a, minutes * a.time_scale, max(2, int(steps * a.step_scale))))
        after = vq_held_out(load_vq(run, cfgs, a.device), pool, a.device)
        info["refined_val_scene_kept"] = after["val_scene_kept"]
        if after["val_scene_kept"] < info["val_scene_kept"]:
            atomic_save(before, run.path("vq-vae.pt"))
            info["refine_kept"] = False
        else:
            info.update(after)
            info["refine_kept"] = True
        log(f"[vq-vae] after refinement: {after} (kept: {info['refine_kept']})")
    return info


@torch.no_grad()
def vq_held_out(vq, pool, device, n=500):
    """Reconstruction MSE and the share of scenes the pixel checker still reads exactly, on held-out images."""
    vx = torch.from_numpy(pool["val_images"][:n]).to(device).permute(0, 3, 1, 2).float() / 255.0
    flat, codes, cb = vq_quantize(vq, vq.encoder(vx * 2 - 1))
    rec = vq.decode_codes(codes)
    mse = float(((rec - vx) ** 2).mean())
    recu = (rec.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    ok = sum(same_scene(detect(recu[i]), labels_to_scene_dict(pool["val_labels"][i])) for i in range(len(recu)))
    return {"val_mse": round(mse, 5), "val_scene_kept": round(ok / len(recu), 4),
            "codes_used": int(len(torch.unique(codes)))}


def refine_vq_decoder(run, a, minutes, steps=PLAN["vq-refine"][0]):
    """VQ-VAE phase 2: the encoder and codebook frozen (so the codes, and the AR-DTok trained on them, stay
    valid), the decoder fine-tuned for sharp small shapes: L1 + L2 weighted ×10 on foreground pixels plus an
    image-gradient (edge) loss. Writes the refined decoder into OUT/vq-vae.pt."""
    tok, text_vocab = load_tok(run)
    cfgs = make_configs(text_vocab)
    vq = load_vq(run, cfgs, a.device)
    pool = np.load(run.path("pool.npz"))
    imgs, labs = pool["images"], pool["labels"]
    from train.common import _BGP
    bgs = torch.from_numpy(_BGP / 255.0).float()
    n, B = len(imgs), VQ_BATCH
    opt = torch.optim.AdamW(vq.decoder.parameters(), lr=5e-4, weight_decay=0.0)
    t0 = time.time()
    step = 0
    vq.decoder.train()

    def grads(t):
        return t[..., 1:, :] - t[..., :-1, :], t[..., :, 1:] - t[..., :, :-1]

    while step < steps and time.time() - t0 < minutes * 60:
        g = torch.Generator().manual_seed(SEED + 17 * step + 1)
        idx = torch.randint(0, n, (B,), generator=g).numpy()
        x = torch.from_numpy(imgs[idx]).to(a.device).permute(0, 3, 1, 2).float() / 255.0
        bg = bgs[torch.from_numpy(labs[idx, 0])].to(a.device)[:, :, None, None]
        with torch.no_grad():
            codes = vq_quantize(vq, vq.encoder(x * 2 - 1))[1]
        rec = vq.decode_codes(codes)
        w = 1.0 + 9.0 * ((x - bg).abs().sum(1, keepdim=True) > 0.1).float()
        gy, gx = grads(rec)
        ty, tx = grads(x)
        loss = (w * ((rec - x).abs() + (rec - x) ** 2)).mean() + (gy - ty).abs().mean() + (gx - tx).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0:
            log(f"[vq-refine] step {step} loss {loss.item():.4f} elapsed {(time.time() - t0) / 60:.1f}m")
        step += 1
    vq.eval()
    atomic_save({"vq": vq.state_dict()}, run.path("vq-vae.pt"))
    log(f"[vq-refine] {step} steps in {(time.time() - t0) / 60:.1f} min")
    return {"refine_steps": step, "refine_minutes": round((time.time() - t0) / 60, 2)}


@torch.no_grad()
def vq_codes_all(vq, imgs, device, bs=256):
    out = []
    for i in range(0, len(imgs), bs):
        x = torch.from_numpy(imgs[i:i + bs]).to(device).permute(0, 3, 1, 2).float() / 255.0
        out.append(vq_quantize(vq, vq.encoder(x * 2 - 1))[1].cpu())
    return torch.cat(out).numpy().astype(np.int16)


def load_vq(run, cfgs, device):
    vq = VQVAE(cfgs[3]).to(device)
    vq.load_state_dict(torch_load(run.path("vq-vae.pt"), map_location="cpu")["vq"])
    return vq.eval()


# ============================================================================================== stage: ar-dtok
def stage_ar_dtok(run, a, tatok=None, init=None):
    """tatok: (TA-Tok encoder, decoder) to condition on, the run's own TA-Tok unless given (retrain_detok.py passes
    a shipped bundle's); init: the AR-DTok's starting weights (a continuation), else a fresh initialisation."""
    tok, text_vocab = load_tok(run)
    cfgs = make_configs(text_vocab)
    enc, dec = tatok or load_tatok(run, cfgs, a.device)[:2]
    vq = load_vq(run, cfgs, a.device)
    cache = run.path("ar-data.npz")
    pool = np.load(run.path("pool.npz"))
    if not os.path.exists(cache):
        t0 = time.time()
        ids = encode_all(enc, pool["images"], a.device)
        codes = vq_codes_all(vq, pool["images"], a.device)
        np.savez(cache, ids1=ids[1], ids2=ids[2], ids3=ids[3], codes=codes)
        log(f"[ar-dtok] encoded the pool in {time.time() - t0:.0f}s")
    c = np.load(cache)
    ids = {s: torch.from_numpy(c[f"ids{s}"].astype(np.int64)) for s in (1, 2, 3)}
    codes = torch.from_numpy(c["codes"].astype(np.int64))
    n, B = len(codes), AR_BATCH
    torch.manual_seed(SEED + 3)
    ar = ARDTok(cfgs[2]).to(a.device)
    if init is not None:
        ar.load_state_dict(init)
    else:
        for nme, p in ar.named_parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, std=0.02)
    scale_cycle = AR_SCALE_CYCLE

    def batch_fn(step):
        g = torch.Generator().manual_seed(SEED + 13 * step)
        idx = torch.randint(0, n, (B,), generator=g)
        s = scale_cycle[step % len(scale_cycle)]
        with torch.no_grad():
            cond = dec(ids[s][idx].to(a.device))
        drop = (torch.rand(B, generator=g) < 0.1).to(a.device)
        cond = torch.where(drop[:, None, None], torch.zeros_like(cond), cond)
        cd = codes[idx]
        inputs = corrupt_codes(cd, AR_INPUT_NOISE, VQ_K, g)
        return cd.to(a.device), cond, inputs.to(a.device)

    def loss_fn(batch, step):
        cd, cond, inputs = batch
        with autocast(a.device, a.bf16):
            lg = ar_train_logits(ar, cd, cond, inputs)
        lg = lg.float()
        loss = F.cross_entropy(lg.reshape(-1, VQ_K), cd.reshape(-1))
        acc = float((lg.argmax(-1) == cd).float().mean())
        return loss, cd.shape[0], f"acc {acc:.3f}"

    info = train_loop(run, a, "ar-dtok", {"ar": ar}, list(ar.parameters()), batch_fn, loss_fn, AR_LR)
    atomic_save({"ar": ar.state_dict()}, run.path("ar-dtok.pt"))
    ar.eval()
    # round trip on held-out images (scale 2 tokens → features → AR-DTok with CFG → VQ → pixel checker)
    rt = {}
    for cfg in (1.0, 2.0, 3.0):
        rt[f"roundtrip_s2_cfg{cfg:g}"] = roundtrip_eval(enc, dec, ar, vq, pool["val_images"][:96],
                                                       pool["val_labels"][:96], 2, cfg, a.device)
    rt["roundtrip_s1_cfg3"] = roundtrip_eval(enc, dec, ar, vq, pool["val_images"][:48], pool["val_labels"][:48],
                                             1, 3.0, a.device)
    rt["roundtrip_s3_cfg3"] = roundtrip_eval(enc, dec, ar, vq, pool["val_images"][:48], pool["val_labels"][:48],
                                             3, 3.0, a.device)
    log(f"[ar-dtok] round trip (scene kept, pixel checker): {rt}")
    info.update(rt)
    return info


@torch.no_grad()
def detok(dec, ar, vq, ids, cfg_scale, device):
    """ids [B, N] → uint8 images [B, 64, 64, 3] (greedy AR-DTok with CFG, as the runtime)."""
    feats = dec(ids.to(device))
    b, nc, c = feats.shape
    cond = torch.cat([feats, torch.zeros_like(feats)], 0)
    bb = 2 * b
    mask = torch.ones(bb, nc, dtype=torch.long, device=device)
    pos = torch.arange(nc, device=device).unsqueeze(0).expand(bb, nc)
    past = [(torch.zeros(bb, ar.cfg.kv_heads, 0, ar.cfg.head_dim, device=device),) * 2 for _ in ar.layers]
    logits, past = ar(torch.zeros(bb, 0, dtype=torch.long, device=device), cond, mask, pos, past)
    empty = torch.zeros(bb, 0, c, device=device)
    out = []
    for i in range(ar.cfg.codes):
        mixed = logits[b:] + cfg_scale * (logits[:b] - logits[b:])
        nxt = mixed.argmax(-1)
        out.append(nxt)
        if i == ar.cfg.codes - 1:
            break
        mask = torch.ones(bb, nc + i + 1, dtype=torch.long, device=device)
        p = torch.full((bb, 1), nc + i, dtype=torch.long, device=device)
        logits, past = ar(torch.cat([nxt, nxt]).view(bb, 1), empty, mask, p, past)
    px = vq.decode_codes(torch.stack(out, 1))
    return (px.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def roundtrip_eval(enc, dec, ar, vq, imgs, labs, scale, cfg_scale, device, bs=48):
    ok = 0
    for i in range(0, len(imgs), bs):
        ids = enc(to_pixels(imgs[i:i + bs], device), torch.tensor([scale], device=device))
        out = detok(dec, ar, vq, ids, cfg_scale, device)
        for j in range(len(out)):
            ok += same_scene(detect(out[j]), labels_to_scene_dict(labs[i + j]))
    return round(ok / len(imgs), 4)


# ============================================================================================== stage: unified
U_MIX = {"understand": 0.36, "generate": 0.32, "edit": 0.2, "multiturn": 0.12}
# AdamW peak learning rate of the unified stage (warm-up, then cosine). 3e-3 was worse at equal steps (2,000, with the
# shifted task mix): one-object generation 32.9 → 2.9 %, questions 55.3 → 52.5 % (experiments/unified_variants.py).
U_LR = 1.5e-3


def unified_records(n, seed0, mix=None):
    """Records of seeds seed0 … seed0 + n − 1 under a task mix (default U_MIX)."""
    recs = []
    for i in range(n):
        s = seed0 + i
        r = D.example(s, mix=mix or U_MIX)
        if r["type"] == "understand" and random.Random(s * 7 + 1).random() < 0.25:
            # more "Describe the image." (the hardest answer), same seed stream
            r = {"type": "understand", "seed": s,
                 **{k: v for k, v in D.understand_example(random.Random(s), True, "describe").items()
                    if k != "type"}}
        recs.append(r)
    return recs


def record_scene_list(rec):
    return D.record_scenes(rec)


def render_scenes(scenes, workers=1):
    """Scene JSONs → uint8 images [N, 64, 64, 3], on `workers` processes when there are many."""
    return np.concatenate(chunked_map(_render_scene_list, scenes, workers))


def _render_scene_list(scenes):
    imgs = np.empty((len(scenes), 64, 64, 3), dtype=np.uint8)
    for i, sc in enumerate(scenes):
        imgs[i] = render(Scene.from_json(sc))
    return imgs


def encode_records(recs, enc, device, workers=1):
    """Renders every scene of the records and encodes it at every scale: sets each record's `_scene_idx` (its scenes'
    rows) and returns the ids, dict scale → int16 tensor [scenes, tokens]."""
    scenes = []
    for r in recs:
        r["_scene_idx"] = []
        for sc in record_scene_list(r):
            r["_scene_idx"].append(len(scenes))
            scenes.append(sc)
    imgs = render_scenes(scenes, workers)
    return {s: torch.from_numpy(v) for s, v in encode_all(enc, imgs, device).items()}


def build_unified_cache(run, a, enc):
    path = run.path("unified-data.pt")
    if os.path.exists(path):
        return torch_load(path)
    t0 = time.time()
    recs = unified_records(a.records, UNIFIED_SEED0)
    data = {"records": recs, "ids": encode_records(recs, enc, a.device)}
    torch.save(data, path)
    log(f"[unified] data cache of {len(recs)} records built in {time.time() - t0:.0f}s")
    return data


def pick(rng, weights):
    r = rng.random() * sum(weights.values())
    for k, w in weights.items():
        r -= w
        if r < 0:
            return k
    return k


UND_SCALES = {1: 0.3, 2: 0.45, 3: 0.25}
GEN_SCALES = {2: 0.7, 1: 0.1, 3: 0.2}
EDIT_OUT_SCALES = {2: 0.8, 1: 0.05, 3: 0.15}
# Share of edit rows whose input has the output's scale; otherwise the input scale is drawn on its own from
# UND_SCALES (scale 2 → 2 in 36 % of edit rows). The runtime encodes a served edit's input at the output scale, so
# "copy these tokens but for the named change" looked like the easier lesson, but at equal steps 0.75 (with half
# the scale-1 generation share) moved no figure beyond the noise: tokens an edit should keep, copied 54.0 → 55.6 %,
# everything else unchanged 12.0 → 14.3 % of 400 edits, one-object generation 21.4 → 17.1 % of 140
# (experiments/unified_variants.py, docs/model-card.md). With shared edit positions (below) it is part of the recipe
# that trained 1.4.0; 0 keeps 1.3.0's batches exactly.
EDIT_SAME_SCALE = 0.75
# Position ids of the unified LLM (the manifest's llm.positions): "sequential" (Tar's, and every bundle's so far) or
# "shared-edits", where an edit's output image reuses its input image's positions (dialect_tar/positions.py), so
# that copying what an edit keeps is a fixed-offset lookup. At equal steps (2,000, with EDIT_SAME_SCALE 0.75) the LLM
# copied 70.8 % of the tokens an edit keeps (sequential: 49.5) and left everything else unchanged in 35.0 % of edits
# (8.3); generation and questions measured lower, within run-to-run variation (experiments/unified_variants.py,
# docs/model-card.md). "sequential" trained the shipped 1.3.0. One full run (2026-11-30, bf16, with EDIT_SAME_SCALE
# 0.75 and PROMPT_DROPOUT 0.1) raised held-out edits 10.6 → 13.7 % (everything else unchanged 17.6 → 29.1 %) but
# lost one-object generation 84.9 → 67.5 % and the round trip 68.3 → 55.3 % (a weaker image path that run), so it
# did not ship (docs/model-card.md, "Runs that were not shipped"). Then, on one substrate (a full run's text stage
# and TA-Tok) at 3,600 steps each, without prompt dropout, shared positions with EDIT_SAME_SCALE 0.75 against 1.3.0's
# choices: edits exact 6.0 → 14.0 %, everything else unchanged 15.3 → 46.5 %, one-object generation 53.6 → 67.1 %,
# questions 65.0 → 67.3 % (2026-11-30, docs/model-card.md). Both constants trained 1.4.0 (2026-11-30, one full run
# on a fast bf16 CPU): on the held-out set edits 10.6 → 41.9 %, and every other figure rose with it, though that run
# also had a stronger image path and 7,614 unified steps against 1.3.0's 5,452, so not all of it is the recipe's
# (docs/model-card.md, "The shipped bundle (1.4.0)").
EDIT_POSITIONS = "shared-edits"
# The unified stage's records: False re-draws `--records` records from a cache built once (1.3.0: 60,000, ~4.4 draws
# each); True draws new records for every group of batches, rendered and encoded as it is built, so none is seen
# twice, at a cost: a group of 64 batches took 15.0 s to build on one fp32 Zen 3 core (cached: 0.8 s) against ~92 s
# to train on there, +16 % (more where steps are faster). At 2,000 steps on 30,000 cached records (3.2 draws each) the loss over a group of
# batches of records trained on was 0.90, of new ones 0.96 (experiments/unified_variants.py): the stage memorises its
# records somewhat. Not measured yet with True.
FRESH_RECORDS = False
# Share of generate and edit rows trained with the unconditional prompt in place of their text (the prompt or the
# instruction; an edit keeps its input image, as InstructPix2Pix drops an edit's instruction): classifier-free
# guidance's condition dropout, so that prompt guidance's unconditional row (the manifest's
# templates.unconditionalPrompt, UNCONDITIONAL_PROMPT, served beside every guided request) is an input the LLM was
# trained on. Without it (1.3.0) that row is the empty prompt the LLM never saw, and guidance still helped (1.3.1:
# one-object prompts 78.6 → 84.9 %); the usual share is 0.1. 0 keeps 1.3.0's batches exactly (no random draw).
PROMPT_DROPOUT = 0.0
UNCONDITIONAL_PROMPT = ""
# Follow-up questions about an understand record's image (number of extra exchanges → weight): 1.5 on average.
UND_EXTRA_QUESTIONS = {0: 0.25, 1: 0.25, 2: 0.25, 3: 0.25}


# Kinds of the understanding rows' questions (kind → weight). None (the recipe): each record's own question, and
# follow-ups of a kind `shapes.language.ask` draws uniformly. continue_unified.py weighs the kinds a bundle answers
# worst: 1.4.0 put "where" in the right cell on 53 % of held-out questions while its own "Describe the image."
# placed the same object right on 91 % (it named another object's cell, most often the large one's).
QUESTION_WEIGHTS = None


def draw_question(scene, rng):
    """A question about `scene` (shapes.language.ask's dict): of a kind drawn from QUESTION_WEIGHTS, a few tries
    for a kind the scene allows, else of ask's uniform choice (the only draw when QUESTION_WEIGHTS is None)."""
    for _ in range(4 if QUESTION_WEIGHTS else 0):
        q = L.ask(scene, rng, pick(rng, QUESTION_WEIGHTS), True)
        if q is not None:
            return q
    return L.ask(scene, rng, None, True)


def condition(text, rng):
    """The text of a generate or edit row: its own, or the unconditional prompt in PROMPT_DROPOUT of the rows."""
    if PROMPT_DROPOUT and rng.random() < PROMPT_DROPOUT:
        return UNCONDITIONAL_PROMPT
    return text


def conversation(rec, ids, rng):
    """A record → list of (Turn, answer-mode, scale) in conversation order (assistant turns carry answers)."""
    t = rec["type"]
    si = rec["_scene_idx"]

    def img(j, s):
        return ImageRef(s, ids[s][si[j]].tolist())

    if t == "understand":
        s = pick(rng, UND_SCALES)
        first = {k: rec.get(k) for k in ("question", "canonical_question", "answer")}
        if QUESTION_WEIGHTS:                # the record's image, asked a question of a weighted kind
            first = draw_question(Scene.from_json(rec["scene"]), rng)
        turns = [Turn("user", first["question"], img(0, s), "understand"), Turn("assistant", first["answer"])]
        # More questions about the same image, as a chat: the image prefix (16-81 tokens) is paid once for several
        # answers, so understanding gets more of the loss for the same compute (1.1.0: 35 % of the sequences but
        # 15 % of the loss tokens). The first exchange is exactly the single-question prompt served.
        extra = pick(rng, UND_EXTRA_QUESTIONS)
        if extra:
            scene = Scene.from_json(rec["scene"])
            asked = {first["canonical_question"]}
            for _ in range(3 * extra):      # distinct questions only: a repeat would teach copying the answer
                q = draw_question(scene, rng)
                if q["canonical_question"] in asked:
                    continue
                asked.add(q["canonical_question"])
                turns += [Turn("user", q["question"], None, "generate"), Turn("assistant", q["answer"])]
                if len(asked) > extra:
                    break
        return turns
    if t == "generate":
        s = pick(rng, GEN_SCALES)
        return [Turn("user", condition(rec["prompt"], rng), None, "generate"), Turn("assistant", "", img(0, s))]
    if t == "edit":
        if EDIT_SAME_SCALE and rng.random() < EDIT_SAME_SCALE:
            s_in = s_out = pick(rng, EDIT_OUT_SCALES)
        else:
            s_in, s_out = pick(rng, UND_SCALES), pick(rng, EDIT_OUT_SCALES)
        instruction = condition(rec["instruction"], rng)
        return [Turn("user", instruction, img(0, s_in), "edit"), Turn("assistant", "", img(1, s_out))]
    turns = []
    for tu in rec["turns"]:
        if tu["role"] == "user":
            im = img(tu["image"], 2) if "image" in tu else None
            task = tu["task"] if im is not None else "generate"
            turns.append(Turn("user", tu["text"], im, task))
        else:
            if "image" in tu:
                turns.append(Turn("assistant", "", img(tu["image"], 2)))
            else:
                turns.append(Turn("assistant", tu["text"]))
    return turns


def sequence(P, tok, turns, im_end_chat):
    """Token ids and loss mask of a conversation, each assistant answer appended to the serve-time prompt."""
    seq, mask = [], []
    nl = tok.encode("\n")
    for k, t in enumerate(turns):
        if t.role != "assistant":
            continue
        mode = "image" if t.image is not None else "text"
        scale = t.image.scale if t.image is not None else 2
        prompt = P.prompt_ids(turns[:k], mode, scale)
        if prompt[:len(seq)] != seq:
            mask = mask[:0]
            mask = [0] * len(prompt)
        else:
            mask = mask + [0] * (len(prompt) - len(seq))
        if t.image is not None:
            ans = [P.image_base + c for c in t.image.ids] + [P.m["tokens"]["imEnd"], im_end_chat]
        else:
            ans = tok.encode(t.text) + [im_end_chat]
        seq = prompt + ans + nl
        mask = mask + [1] * len(ans) + [0] * len(nl)
    return seq, mask


def init_image_rows_(llm, enc, manifest):
    """Tar: the image tokens' input embeddings (and output rows) start from the TA-Tok codebook."""
    base = manifest["tokens"]["imageBase"]
    with torch.no_grad():
        cb = enc.codebook().detach()
        E = llm.embed_tokens.weight
        tv = manifest["tokens"]["pad"]
        E[base:base + K] = cb.to(E.device) * E[:tv].norm(dim=-1).mean()
        H = llm.lm_head.weight
        H[base:base + K] = cb.to(H.device) * H[:tv].norm(dim=-1).mean()


class UnifiedBatches:
    """The unified stage's batches, a pure function of the step: B conversations each, cut from G·B sequences sorted
    by length (G = 64 leaves 1.8 % of the positions padding, G = 8: 13 %, measured on 1.3.0's mix)."""
    B, G, MAXLEN = 48, 64, 300

    def __init__(self, P, tok, recs, ids, im_end_chat, pad):
        self.P, self.tok, self.recs, self.ids, self.im_end_chat, self.pad = P, tok, recs, ids, im_end_chat, pad
        self.groups = {}

    def _group(self, gi):
        if gi in self.groups:
            return self.groups[gi]
        self.groups.clear()
        rng = random.Random(SEED * 1000 + gi)
        seqs = []
        draws = self._draws(gi, rng)
        while len(seqs) < self.B * self.G:
            r, ids = next(draws)
            s, m = sequence(self.P, self.tok, conversation(r, ids, rng), self.im_end_chat)
            if len(s) <= self.MAXLEN:
                seqs.append((s, m))
        seqs.sort(key=lambda x: len(x[0]))
        batches = [seqs[i * self.B:(i + 1) * self.B] for i in range(self.G)]
        rng.shuffle(batches)
        self.groups[gi] = batches
        return batches

    def _draws(self, gi, rng):
        """The records of group `gi` with their image ids: drawn with replacement from the fixed set."""
        while True:
            yield self.recs[rng.randrange(len(self.recs))], self.ids

    def rows(self, step):
        """(token ids, loss mask) of each conversation of the step's batch."""
        return self._group(step // self.G)[step % self.G]

    def tensors(self, step):
        """Inputs, next-token targets (-100 where no loss) and position ids of the step's batch, right-padded."""
        bt = self.rows(step)
        T = max(len(s) for s, _ in bt)
        x = torch.full((len(bt), T), self.pad, dtype=torch.long)
        y = torch.full((len(bt), T), -100, dtype=torch.long)
        pos = torch.arange(T).repeat(len(bt), 1)
        for i, (s, m) in enumerate(bt):
            x[i, :len(s)] = torch.tensor(s)
            tgt = torch.tensor([t if mm else -100 for t, mm in zip(s, m)])
            y[i, :len(s) - 1] = tgt[1:]
            pos[i, :len(s)] = torch.tensor(self.P.positions(s))
        return x, y, pos


class FreshUnifiedBatches(UnifiedBatches):
    """UnifiedBatches whose every group draws records never drawn before (seeds UNIFIED_SEED0 + gi · STRIDE + …),
    rendered and TA-Tok-encoded as the group is built, instead of re-drawing a fixed set: no record is seen twice."""
    STRIDE = 2 * UnifiedBatches.B * UnifiedBatches.G      # seeds per group; the length filter drops a few records
    CHUNK = 512                                           # records rendered and encoded together

    def __init__(self, P, tok, enc, device, im_end_chat, pad):
        super().__init__(P, tok, [], {}, im_end_chat, pad)
        self.enc, self.device = enc, device

    def _draws(self, gi, rng):
        for first in range(0, self.STRIDE, self.CHUNK):
            recs = unified_records(self.CHUNK, UNIFIED_SEED0 + gi * self.STRIDE + first)
            with torch.no_grad():
                ids = encode_records(recs, self.enc, self.device)
            yield from ((r, ids) for r in recs)
        raise RuntimeError(f"group {gi} used up its {self.STRIDE} seeds")


def unified_batches(run, a, P, tok, enc, manifest):
    """The unified stage's batches under FRESH_RECORDS: new records every group, or re-drawn from the data cache."""
    im_end_chat, pad = tok.token_id("<|im_end|>"), manifest["tokens"]["pad"]
    if FRESH_RECORDS:
        return FreshUnifiedBatches(P, tok, enc, a.device, im_end_chat, pad)
    data = build_unified_cache(run, a, enc)
    return UnifiedBatches(P, tok, data["records"], data["ids"], im_end_chat, pad)


def stage_unified(run, a):
    tok, text_vocab = load_tok(run)
    cfgs = make_configs(text_vocab)
    manifest = manifest_for(tok, cfgs)
    P = prompt_helper(manifest, tok)
    enc, dec, aux = load_tatok(run, cfgs, a.device)
    batches = unified_batches(run, a, P, tok, enc, manifest)
    llm = QwenLM(cfgs[0]).to(a.device)
    lt = torch_load(run.path("llm-text.pt"), map_location="cpu")
    llm.load_state_dict(lt["llm"])
    init_image_rows_(llm, enc, manifest)
    pad = manifest["tokens"]["pad"]

    def batch_fn(step):
        return [t.to(a.device) for t in batches.tensors(step)]

    def loss_fn(batch, step):
        x, y, pos = batch
        return masked_lm_loss(llm, x, y, a.device, a.bf16, pos), int((x != pad).sum()), f"T {x.shape[1]}"

    info = train_loop(run, a, "unified", {"llm": llm}, list(llm.parameters()), batch_fn, loss_fn, U_LR, every=10)
    atomic_save({"llm": llm.state_dict()}, run.path("unified.pt"))
    return info


# ============================================================================================== eval (PyTorch)
def load_all(run, device="cpu"):
    tok, text_vocab = load_tok(run)
    cfgs = make_configs(text_vocab)
    enc, dec, aux = load_tatok(run, cfgs, device)
    vq = load_vq(run, cfgs, device)
    ar = ARDTok(cfgs[2]).to(device)
    ar.load_state_dict(torch_load(run.path("ar-dtok.pt"), map_location="cpu")["ar"])
    llm = QwenLM(cfgs[0]).to(device)
    llm.load_state_dict(torch_load(run.path("unified.pt"), map_location="cpu")["llm"])
    for m in (ar, llm):
        m.eval()
    return tok, cfgs, llm, enc, dec, aux, ar, vq


@torch.no_grad()
def greedy_in_chunks(llm, P, prompts, mode, max_new, device, chunk=50):
    """The reference's greedy_decode over many prompts, `chunk` at a time (bounded memory for the KV cache and
    padding); the new ids per prompt."""
    outs = []
    for i in range(0, len(prompts), chunk):
        outs += greedy_decode(llm, P, prompts[i:i + chunk], mode, max_new, device=device)[0]
    return outs


def quick_eval(run, a, n=200, pixel_n=60, cfg_scales=(3.0,), log_prefix="[eval]"):
    """Held-out (monitoring seeds) numbers through the PyTorch reference algorithm:
    understanding accuracy per scale (canonical questions), describe exact-match, generation constraint rate
    (semantic probe on the generated tokens, and the pixel checker on a subset), edit correctness (probe)."""
    dev = "cpu"
    tok, cfgs, llm, enc, dec, aux, ar, vq = load_all(run, dev)
    manifest = manifest_for(tok, cfgs)
    P = prompt_helper(manifest, tok)
    res = {}
    rng = random.Random(5)
    # understanding
    und = [D.example(VAL_SEED0 + 10**6 + i, type="understand", paraphrase=False) for i in range(n)]
    desc = [D.understand_example(random.Random(VAL_SEED0 + 2 * 10**6 + i), False, "describe") for i in range(n // 2)]
    for s in (1, 2, 3):
        for name, recs in (("understand", und), ("describe", desc)):
            imgs = np.stack([render(Scene.from_json(r["scene"])) for r in recs])
            ids = encode_all(enc, imgs, dev)[s]
            prompts = [P.prompt_ids([Turn("user", r["question"], ImageRef(s, ids[i].tolist()), "understand")],
                                    "text") for i, r in enumerate(recs)]
            outs = greedy_in_chunks(llm, P, prompts, "text", 96, dev)
            acc = np.mean([tok.decode(o).strip() == r["answer"] for o, r in zip(outs, recs)])
            res[f"{name}_s{s}"] = round(float(acc), 4)
    # generation (canonical prompts), scale 2 (and 3)
    gens = [D.example(VAL_SEED0 + 3 * 10**6 + i, type="generate", paraphrase=False) for i in range(n)]
    for s in (2, 3, 1):
        if s == 1 and n > 60:
            sub = gens[:60]
        else:
            sub = gens
        prompts = [P.prompt_ids([Turn("user", r["prompt"], None, "generate")], "image", s) for r in sub]
        outs = greedy_in_chunks(llm, P, prompts, "image", P.scale_tokens[s], dev)
        tids = torch.tensor([[t - P.image_base for t in o] for o in outs])
        with torch.no_grad():
            pred = aux.predict(dec(tids), s).numpy()
        ok = [satisfies(labels_to_scene_dict(p), r["constraints"]) for p, r in zip(pred, sub)]
        one = [o for o, r in zip(ok, sub) if len(r["constraints"]["objects"]) == 1]
        multi = [o for o, r in zip(ok, sub) if len(r["constraints"]["objects"]) > 1]
        res[f"gen_probe_s{s}_one"] = round(float(np.mean(one)), 4) if one else None
        res[f"gen_probe_s{s}_multi"] = round(float(np.mean(multi)), 4) if multi else None
        if s == 2:
            for cfg in cfg_scales:
                pix = detok(dec, ar, vq, tids[:pixel_n], cfg, dev)
                okp = [satisfies(detect(pix[i]), sub[i]["constraints"]) for i in range(len(pix))]
                one = [o for o, r in zip(okp, sub) if len(r["constraints"]["objects"]) == 1]
                multi = [o for o, r in zip(okp, sub) if len(r["constraints"]["objects"]) > 1]
                res[f"gen_pixels_s2_cfg{cfg:g}_one"] = round(float(np.mean(one)), 4) if one else None
                res[f"gen_pixels_s2_cfg{cfg:g}_multi"] = round(float(np.mean(multi)), 4) if multi else None
    # editing (probe on the output tokens; every object must match the target)
    eds = [D.example(VAL_SEED0 + 4 * 10**6 + i, type="edit", paraphrase=False) for i in range(n)]
    imgs = np.stack([render(Scene.from_json(r["scene"])) for r in eds])
    ids = encode_all(enc, imgs, dev)[2]
    prompts = [P.prompt_ids([Turn("user", r["instruction"], ImageRef(2, ids[i].tolist()), "edit")], "image", 2)
               for i, r in enumerate(eds)]
    outs = greedy_in_chunks(llm, P, prompts, "image", 16, dev)
    tids = torch.tensor([[t - P.image_base for t in o] for o in outs])
    pred = aux.predict(dec(tids), 2).numpy()
    res["edit_probe_s2"] = round(float(np.mean([same_scene(labels_to_scene_dict(p), r["target"])
                                                for p, r in zip(pred, eds)])), 4)
    pix = detok(dec, ar, vq, tids[:pixel_n], 3.0, dev)
    res["edit_pixels_s2"] = round(float(np.mean([same_scene(detect(pix[i]), eds[i]["target"])
                                                 for i in range(len(pix))])), 4)
    log(log_prefix, json.dumps(res))
    return res


# ============================================================================================== export / check
def stage_export(run, a):
    tok, cfgs, llm, enc, dec, aux, ar, vq = load_all(run, "cpu")
    ev = quick_eval(run, a, n=a.eval_n, cfg_scales=(1.0, 2.0, 3.0))
    cfg_best = max((1.0, 2.0, 3.0), key=lambda c: (ev.get(f"gen_pixels_s2_cfg{c:g}_one", 0) or 0) +
                   (ev.get(f"gen_pixels_s2_cfg{c:g}_multi", 0) or 0) + 0.001 * c)
    if a.detok_guidance is not None:    # chosen on a tuning set through the runtime (npm run bench:detok)
        cfg_best = a.detok_guidance
    manifest = manifest_for(tok, cfgs, cfg_scale=cfg_best,
                            image_sampling={"temperature": a.image_temperature, "topK": a.image_topk, "topP": 1,
                                            "cfgScale": a.prompt_guidance},
                            understanding={"scale": a.understanding_scale,
                                           "viewScales": [int(s) for s in a.view_scales.split(",") if s]},
                            editing={"scale": a.edit_scale},
                            self_check=None if a.self_check_candidates == 0 else {
                                "judge": "shapes", "question": "Describe the image.",
                                "candidates": a.self_check_candidates, "temperature": a.self_check_temperature})
    out = a.bundle
    if os.path.exists(out):
        shutil.rmtree(out)
    eb.export_bundle(out, tok, llm, enc, dec, ar, vq, manifest)
    eb.save_checkpoint(run.path("final.pt"), llm, enc, dec, ar, vq, manifest, run.path("tokenizer.json"))
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    log(f"[export] {out}: {size / 1e6:.1f} MB, cfgScale {cfg_best}")
    with open(run.path("eval_pytorch.json"), "w") as f:
        json.dump(ev, f, indent=2)
    return {"bundle_mb": round(size / 1e6, 2), "cfg_scale": cfg_best, "eval": ev}


def check_onnx_parity(pipe, tok, bundle, gdir):
    """ONNX parity of an exported bundle: golden outputs of the PyTorch reference `pipe` (make_fixtures' golden
    writer) into `gdir`, checked in onnxruntime-node by training/check_bundle.mjs; deferred where there is no Node."""
    import make_fixtures as mf
    mf.GOLDEN = gdir
    g = mf.make_golden(pipe, tok)
    g["bundle"] = bundle
    with open(os.path.join(gdir, "golden.json"), "w") as f:
        json.dump(g, f, ensure_ascii=False)
    if shutil.which("node") is None:
        # A GPU machine without Node: the golden outputs are written; the check runs where Node is.
        log(f"[check] no node here: run `node training/check_bundle.mjs {bundle} {gdir}` where there is")
        return {"onnx_parity": "deferred (no node)"}
    r = subprocess.run(["node", os.path.join(HERE, "check_bundle.mjs"), bundle, gdir], cwd=ROOT,
                       capture_output=True, text=True)
    log("[check] " + (r.stdout[-3000:] + r.stderr[-2000:]).strip())
    if r.returncode != 0:
        raise SystemExit("[check] onnxruntime-node parity check failed")
    return {"onnx_parity": "ok"}


def stage_check(run, a):
    """ONNX parity of the exported bundle with the run's final checkpoint (check_onnx_parity)."""
    tok, llm, enc, dec, ar, vq, manifest = eb.load_checkpoint(run.path("final.pt"))
    return check_onnx_parity(TarPipeline(manifest, tok, llm, enc, dec, ar, vq), tok, a.bundle, run.path("golden"))


# ============================================================================================== main
FUNCS = {"data": stage_data, "tokenizer": stage_tokenizer, "llm-text": stage_llm_text, "ta-tok": stage_ta_tok,
         "vq-vae": stage_vq_vae, "ar-dtok": stage_ar_dtok, "unified": stage_unified, "export": stage_export,
         "check": stage_check}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(HERE, "runs", "shapes"))
    ap.add_argument("--bundle", default=os.path.join(ROOT, "models", "tar-shapes"))
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"],
                    help="matrix products of the LLM, AR-DTok and TA-Tok ViT training forwards: bf16 (mixed) where "
                         "the device has fast bf16 units (auto), or always fp32")
    ap.add_argument("--stage", action="append", choices=STAGES, help="run (or redo) only these stages")
    ap.add_argument("--until", choices=STAGES, help="stop after this stage")
    ap.add_argument("--time-scale", type=float, default=1.0, help="× each stage's time budget (0: no budget)")
    ap.add_argument("--step-scale", type=float, default=1.0, help="× each stage's step cap")
    ap.add_argument("--pool", type=int, default=30000, help="images in the TA-Tok / VQ / AR-DTok pool")
    ap.add_argument("--records", type=int, default=60000, help="unified-stage records")
    ap.add_argument("--text-records", type=int, default=20000)
    ap.add_argument("--eval-n", type=int, default=120)
    ap.add_argument("--image-temperature", type=float, default=0.0)
    ap.add_argument("--image-topk", type=int, default=0)
    ap.add_argument("--prompt-guidance", type=float, default=1.25,
                    help="the bundle's sampling.image.cfgScale: classifier-free guidance of generations and edits by "
                         "their text, run by the TS runtime (1 = off). 1.25 was chosen for 1.3.0 with "
                         "`npm run bench:guidance` on a tuning set; choose it again for a new bundle")
    ap.add_argument("--detok-guidance", type=float, default=None,
                    help="the bundle's sampling.detok.cfgScale (classifier-free guidance of the AR-DTok by the image "
                         "tokens); default: the best of 1, 2, 3 on the export's PyTorch sample of generations. Choose "
                         "it with `npm run bench:detok` on a tuning set and pass it here")
    ap.add_argument("--understanding-scale", type=int, default=3, choices=(1, 2, 3),
                    help="the bundle's understanding.scale: the scale an uploaded image is encoded at to be "
                         "understood. 3 was chosen for 1.3.0's weights with `npm run bench:understanding` on a tuning "
                         "set; choose it again for a new bundle")
    ap.add_argument("--edit-scale", type=int, default=3, choices=(1, 2, 3),
                    help="the bundle's editing.scale: the scale an uploaded image is encoded and edited at. 3 was "
                         "chosen for 1.4.0's weights with `npm run bench:edit-scale` on a tuning set (edits 46.3 %% "
                         "against 38.5 %% at scale 2); choose it again for a new bundle")
    ap.add_argument("--self-check-candidates", type=int, default=8,
                    help="the bundle's selfCheck.candidates: images a failed self-check writes more (0: no selfCheck "
                         "section). 8 at temperature 0.7 measured for 1.4.x's weights with `npm run bench:self-check`")
    ap.add_argument("--self-check-temperature", type=float, default=0.7, help="the bundle's selfCheck.temperature")
    ap.add_argument("--view-scales", default="",
                    help="the bundle's understanding.viewScales, comma-separated (\"\" for none): more encodings of "
                         "an uploaded image that a question is read from (src/model/views.ts). 2 helped 1.3.0's "
                         "weights; none was best for 1.4.0's (`npm run bench:understanding`); choose again for a new "
                         "bundle")
    ap.add_argument("--ta-entropy", type=float, default=0.5, help="TA-Tok codebook-usage entropy weight")
    ap.add_argument("--ta-tau", type=float, default=0.05, help="TA-Tok soft-assignment temperature")
    ap.add_argument("--smoke", action="store_true", help="tiny data and a few steps per stage")
    ap.add_argument("--vq-refine-minutes", type=float, default=0.0,
                    help="only refine the VQ decoder of a finished vq-vae stage for this many minutes")
    ap.add_argument("--eval", action="store_true", help="only run the PyTorch quick eval of a finished run")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads in all (split between the lanes)")
    ap.add_argument("--lanes", type=int, default=None, choices=[1, 2],
                    help="train VQ-VAE + AR-DTok in a second process alongside the rest (default: 2 on CPU)")
    ap.add_argument("--lane", choices=list(LANES), help=argparse.SUPPRESS)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.lanes is None:
        a.lanes = 2 if a.device == "cpu" and a.threads >= 2 else 1
    if a.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device")
    a.bf16 = a.precision == "bf16" or (a.precision == "auto" and bf16_available(a.device))
    if not a.lane:
        log(f"precision of the training forwards (LLM, AR-DTok, TA-Tok's ViTs): {'bf16 mixed' if a.bf16 else 'fp32'} ({a.precision})")
    if a.smoke:
        a.time_scale, a.step_scale = 0.02, 0.01
        a.pool, a.records, a.text_records, a.eval_n = 600, 600, 2000, 20
    if a.time_scale == 0:
        a.time_scale = 1e6
    run = Run(a.out)
    if a.eval:
        quick_eval(run, a, n=a.eval_n, cfg_scales=(1.0, 2.0, 3.0))
        return
    if a.vq_refine_minutes:
        torch.set_num_threads(1)
        info = refine_vq_decoder(run, a, a.vq_refine_minutes)
        run.note("vq-refine", info)
        return
    if a.stage:                                   # explicit stages: run (or redo) them in order, here
        for st in STAGES:
            if st in a.stage:
                run_stage(run, a, st)
        return
    if a.lane:                                    # one lane of a parallel run (a child process of the run below)
        run_lane(run, a, LANES[a.lane], until=a.until)
        return
    t0 = time.time()
    if a.lanes == 2:
        torch.set_num_threads(max(1, a.threads // 2))
        child = subprocess.Popen([sys.executable, os.path.abspath(__file__), *sys.argv[1:], "--lane", "b",
                                  "--threads", str(max(1, a.threads // 2))])
        a.partner_done = lambda: child.poll() == 0
        try:
            run_lane(run, a, LANES["a"], until=a.until, other=child)
        except BaseException:
            child.terminate()
            raise
        if child.wait() != 0:
            raise SystemExit(f"lane b (vq-vae, ar-dtok) failed with exit code {child.returncode}")
    else:
        run_lane(run, a, STAGES, until=a.until)
    run.note("wall_minutes_last_command", round((time.time() - t0) / 60, 1))


def run_stage(run, a, st):
    run.undo(st)
    random.seed(SEED)
    np.random.seed(SEED % 2**31)
    torch.manual_seed(SEED)
    log(f"[{st}] starting")
    t0 = time.time()
    extra = FUNCS[st](run, a) or {}
    dt = time.time() - t0
    run.mark_done(st, dt, extra)
    log(f"[{st}] done in {dt / 60:.1f} min")


PARENT_PID = os.getppid()


def run_lane(run, a, stages, until=None, other=None):
    """Run the stages of one lane in order, skipping finished ones, each once its prerequisites (possibly trained
    by the other lane) are done. `other`: the other lane's process, whose failure ends the wait."""
    for st in stages:
        if until is not None and STAGES.index(st) > STAGES.index(until):
            break
        if run.done(st):
            log(f"[{st}] done already, skipped")
            continue
        waiting = [n for n in NEEDS[st] if not run.done(n)]
        if waiting:
            log(f"[{st}] waiting for {', '.join(waiting)}")
        while not all(run.done(n) for n in NEEDS[st]):
            if other is not None and other.poll() not in (None, 0):
                raise SystemExit(f"[{st}] the other lane failed (exit code {other.returncode})")
            if other is None and os.getppid() != PARENT_PID:
                raise SystemExit(f"[{st}] the main process is gone")
            if other is not None and other.poll() == 0 and any(n in LANES["b"] for n in NEEDS[st]
                                                                if not run.done(n)):
                raise SystemExit(f"[{st}] lane b ended before {NEEDS[st]} were done")
            time.sleep(5)
        run_stage(run, a, st)

if __name__ == "__main__":
    main()
