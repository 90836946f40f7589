"""Experiments that compare variants of one stage start each variant from a copy of the same substrate run (the
earlier stages' outputs), so that the variants differ only in what the experiment sets."""
import os
import shutil


def copy_substrate(substrate: str, out: str, names) -> None:
    """Create the variant's run folder `out` and copy the substrate's files `names` into it (those it has and the
    variant does not have yet: a resumed variant keeps its own)."""
    os.makedirs(out, exist_ok=True)
    for name in names:
        src = os.path.join(substrate, name)
        if os.path.exists(src) and not os.path.exists(os.path.join(out, name)):
            shutil.copy(src, out)
