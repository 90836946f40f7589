"""Dialect's PyTorch side of Tar ("Vision as a Dialect"): model definitions, reference pipeline, export helpers."""
