"""Wall-clock timing shared by the speed experiments."""
import time


def mean_seconds(step, warmup: int, steps: int) -> float:
    """Mean seconds of one call of `step()` over `steps` calls, after `warmup` untimed calls (allocator, oneDNN
    kernel choice and caches settle in the first few)."""
    for _ in range(warmup):
        step()
    t0 = time.time()
    for _ in range(steps):
        step()
    return (time.time() - t0) / steps
