"""Data-parallel training under torchrun: every process (rank) holds the same networks, samples
batches from its own part of the training scans, and before every optimiser step the gradients
are averaged across ranks, so the weights stay identical everywhere.

This is what DistributedDataParallel does, done by hand: DDP's module wrapper expects one forward
per backward, while a GAN step runs the critic on real and fake batches before one backward and
the gradient penalty differentiates through a gradient. Every call here does nothing in a single
process.
"""

from __future__ import annotations

import hashlib

import torch
import torch.distributed as dist
from torch import nn


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def average_gradients(module: nn.Module) -> None:
    """Mean gradient over ranks, in one all-reduce of the flattened gradients."""
    if not active():
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_buffers(*modules: nn.Module) -> None:
    """Rank 0's running statistics and spectral-norm vectors everywhere (as DDP does each step)."""
    if not active():
        return
    for module in modules:
        for buffer in module.buffers():
            dist.broadcast(buffer, 0)


def any_rank(flag: bool) -> bool:
    """True on every rank when it is true on any (a stop asked of one process stops them all at the
    same step boundary)."""
    if not active():
        return flag
    value = torch.tensor([float(flag)])
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def weights_digest(*modules: nn.Module) -> str:
    """A digest of the exact weights and buffers, to check that replicas agree."""
    h = hashlib.sha256()
    for module in modules:
        for tensor in (*module.parameters(), *module.buffers()):
            h.update(tensor.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def gather(value: str) -> list[str]:
    """Every rank's value, in rank order (all ranks get the list)."""
    if not active():
        return [value]
    values: list[str] = [""] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values
