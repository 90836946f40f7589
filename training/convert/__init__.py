"""Conversion of the released Tar checkpoints into dialect bundles (see training/convert_tar.py)."""
