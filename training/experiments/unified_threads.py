"""Tokens per second of the unified stage's training step on one and on two threads (one process each call).

The step is the stage's own (its loss, `train.common.masked_lm_loss`, gradient clipping and AdamW as in
`train_loop`): the shipped LLM configuration, a 48-row batch of the mix's mean row length (91 tokens;
docs/training.md), targets on the last 21 positions of each row, bf16 autocast where the CPU has bf16 units.
Random token ids: the cost does not depend on them. It decides whether lane a should take lane b's core once lane b
has finished (train_shapes.take_spare_core):

  training/py training/experiments/unified_threads.py          # prints one line per thread count
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import torch  # noqa: E402

import train_shapes as T  # noqa: E402
from train.common import bf16_available, masked_lm_loss  # noqa: E402
from timing import mean_seconds  # noqa: E402

ROWS, LENGTH, LOSS_POSITIONS, TEXT_VOCAB = 48, 91, 21, 638


def tokens_per_second(threads: int, warmup: int = 3, steps: int = 15) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    llm = T.QwenLM(T.make_configs(TEXT_VOCAB)[0])
    opt = torch.optim.AdamW(llm.parameters(), 1e-3)
    vocab = llm.cfg.vocab_size
    x = torch.randint(0, vocab, (ROWS, LENGTH))
    y = torch.randint(0, vocab, (ROWS, LENGTH))
    y[:, :LENGTH - LOSS_POSITIONS] = -100
    bf16 = bf16_available("cpu")
    params = list(llm.parameters())

    def step():
        loss = masked_lm_loss(llm, x, y, "cpu", bf16)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    return ROWS * LENGTH / mean_seconds(step, warmup, steps)


if __name__ == "__main__":
    for n in (1, 2):
        print(f"{n} thread(s): {tokens_per_second(n):,.0f} tokens/s")
