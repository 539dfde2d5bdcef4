"""--precision auto|bf16|fp32: bfloat16 mixed precision where the processor computes it natively.

On a CPU with AVX-512 BF16 or AMX, oneDNN runs bfloat16 convolutions about twice as fast as fp32
(benchmarks/train_speed.py); elsewhere bfloat16 is emulated and slower, so `auto` keeps fp32 there.
Autocast keeps weights, optimiser state and losses in fp32: only the convolutions' arithmetic is
rounded, and exported networks are fp32 TorchScript whatever the precision they trained in.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI reads PRECISIONS before loading torch
    import torch

PRECISIONS = ("auto", "bf16", "fp32")


def bf16_native(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 in hardware (private torch probes; False if absent)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    probes = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return any(probe() for probe in probes if probe is not None)


def resolve_precision(name: str, device: torch.device) -> str:
    """'bf16' or 'fp32' for `name` on `device`; ValueError for an unknown name, or bf16 asked for
    where the device would only emulate it."""
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}; use {', '.join(PRECISIONS)}")
    native = bf16_native(device)
    if name == "bf16" and not native:
        raise ValueError(
            f"--precision bf16 was asked for, but this {device.type.upper()} has no native bfloat16 "
            "(AVX-512 BF16 or AMX); use --precision auto or fp32"
        )
    return "bf16" if name == "bf16" or (name == "auto" and native) else "fp32"


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    """bfloat16 autocast for a resolved 'bf16', a no-op for 'fp32' (an unresolved 'auto' is refused:
    it would silently mean fp32)."""
    import torch

    if precision not in ("bf16", "fp32"):
        raise ValueError(f"precision {precision!r} must be resolved to bf16 or fp32 first (resolve_precision)")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
