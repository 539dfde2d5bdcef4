"""--device auto|cpu|cuda."""

from __future__ import annotations

import torch


def resolve_device(name: str, index: int = 0) -> torch.device:
    """`index` picks the GPU on a machine with several (torchrun's LOCAL_RANK)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA device is available (use --device auto)")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device("cuda", index % torch.cuda.device_count()) if name == "cuda" else torch.device("cpu")
