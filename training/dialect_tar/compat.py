"""What differs between the PyTorch versions this code runs on: Debian's 1.13 on the CPU machines, and 2.x (2.11
with CUDA 13 on the GPU machines). Every call below behaves as 1.13's on both."""
import inspect

import torch


def torch_load(path, map_location="cpu"):
    """torch.load of this project's own checkpoints. They hold configs, manifests and arrays beside the tensors,
    which PyTorch >= 2.6 refuses by default (`weights_only=True`); these files are ours, so load them whole."""
    if "weights_only" in inspect.signature(torch.load).parameters:
        return torch.load(path, map_location=map_location, weights_only=False)
    return torch.load(path, map_location=map_location)


def onnx_export_kwargs() -> dict:
    """Extra torch.onnx.export arguments: the TorchScript exporter, whose graphs docs/training.md describes and the
    runtime was checked against. PyTorch >= 2.9 defaults to the dynamo exporter, which names, folds and shapes
    the graphs differently."""
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        return {"dynamo": False}
    return {}
