"""Self-test of TA-Tok's pooling matrices (pure PyTorch, no model): `training/py -m dialect_tar.test_pooling`."""
import torch

from dialect_tar.ta_tok import _adaptive_windows, _nested_windows, pooling_matrix


def windows_of(matrix: torch.Tensor, grid: int):
    """The (first, last + 1) patch rows each token of the first row of tokens pools."""
    p = int(round(matrix.shape[0] ** 0.5))
    out = []
    for j in range(p):
        rows = sorted({int(i) // grid for i in torch.nonzero(matrix[j]).squeeze(1)})
        cols = sorted({int(i) % grid for i in torch.nonzero(matrix[j]).squeeze(1)})
        assert rows == [0, 1, 2] or p == grid, rows
        out.append((cols[0], cols[-1] + 1))
    return out


def main() -> None:
    # adaptive on the miniature's 9×9 grid: scale 2's inner windows straddle the 3×3 cells (patches 0–2, 3–5, 6–8)
    assert _adaptive_windows(0, 9, 4) == [(0, 3), (2, 5), (4, 7), (6, 9)]
    # nested: every window inside one cell, the middle cell split in two; scales 1 and 3 as adaptive
    assert _nested_windows(9, 4, 3) == [(0, 3), (3, 5), (4, 6), (6, 9)]
    assert windows_of(pooling_matrix(9, 2, "nested", 3), 9) == [(0, 3), (3, 5), (4, 6), (6, 9)]
    for scale in (1, 3):
        assert torch.equal(pooling_matrix(9, scale, "nested", 3), pooling_matrix(9, scale, "adaptive"))
    # every token averages its window: rows sum to 1
    for mode in ("stride", "adaptive"):
        assert torch.allclose(pooling_matrix(9, 2, mode).sum(1), torch.ones(16))
    assert torch.allclose(pooling_matrix(9, 2, "nested", 3).sum(1), torch.ones(16))
    # the released Tar's 27×27 grid at scale 2 (13 windows a side): each inside one of scale 3's 9 blocks of 3
    windows = _nested_windows(27, 13, 3)
    assert len(windows) == 13 and all(a // 3 == (b - 1) // 3 for a, b in windows), windows
    assert {a // 3 for a, _ in windows} == set(range(9))
    for bad in (lambda: pooling_matrix(9, 2, "nested"), lambda: pooling_matrix(9, 2, "cells", 3)):
        try:
            bad()
        except ValueError:
            continue
        raise AssertionError("expected a ValueError")
    print("pooling selftest ok")


if __name__ == "__main__":
    main()
