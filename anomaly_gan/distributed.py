"""Where this process stands among torchrun's processes: its rank and the world size, read from
the environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK), and the few collective calls the
commands need. A plain `anomaly-gan ...` is rank 0 of a world of 1 and never touches
torch.distributed."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

TIMEOUT = datetime.timedelta(minutes=30)  # a rank waits this long for the slowest at a barrier


class RankFailed(RuntimeError):
    """Another rank stopped (died, or failed) while this one waited on it."""


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> World:
        return cls(
            int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))
        )

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def start(self, backend: str = "gloo") -> None:
        """Join the process group (gloo on the CPU, nccl for CUDA tensors)."""
        import torch.distributed as dist

        if self.distributed and not dist.is_initialized():
            dist.init_process_group(backend, rank=self.rank, world_size=self.size, timeout=TIMEOUT)

    def barrier(self, what: str) -> None:
        """Wait for every rank; a rank that is gone turns into RankFailed naming `what` was awaited."""
        import torch.distributed as dist

        if not dist.is_initialized():
            return
        try:
            dist.barrier()
        except RuntimeError as e:
            raise RankFailed(
                f"rank {self.rank}: another rank stopped before {what} ({str(e).splitlines()[0][:120]})"
            ) from None

    def stop(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


ALONE = World()  # a plain run: rank 0 of 1
