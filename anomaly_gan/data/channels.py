"""Which of a scan's channels a model sees: colour and depth (rgbd), colour alone (rgb) or depth
alone (depth).

Every scan is carried as the same 4-channel array (R, G, B, D; data.tensor) whatever the camera
gave, with the missing part blank; a bundle's channel set picks the networks' inputs from it. The
channels a model does not see are copied from the scan into its reconstruction, so they add
nothing to residuals, maps or scores, and panels leave them out.
"""

from __future__ import annotations

from dataclasses import dataclass

CHANNEL_SETS = ("rgbd", "rgb", "depth")
_INDICES = {"rgbd": (0, 1, 2, 3), "rgb": (0, 1, 2), "depth": (3,)}


@dataclass(frozen=True)
class Channels:
    name: str = "rgbd"

    def __post_init__(self) -> None:
        if self.name not in _INDICES:
            raise ValueError(f"unknown channels {self.name!r}; choose from {', '.join(CHANNEL_SETS)}")

    @property
    def indices(self) -> list[int]:
        """Positions in the 4-channel array, in the networks' order."""
        return list(_INDICES[self.name])

    @property
    def count(self) -> int:
        return len(_INDICES[self.name])

    @property
    def colour(self) -> bool:
        return self.name != "depth"

    @property
    def depth(self) -> bool:
        return self.name != "rgb"

    @property
    def all(self) -> bool:
        return self.name == "rgbd"

    def pick(self, batch):
        """The networks' inputs from a (B, 4, ...) array or tensor: the batch itself for rgbd (no
        copy, memory layout kept), else the seen channels."""
        return batch if self.all else batch[:, self.indices]


RGBD = Channels("rgbd")


def channels_of(has_colour: bool, has_depth: bool) -> str:
    """The channel set a scan can feed."""
    return "rgbd" if has_colour and has_depth else "rgb" if has_colour else "depth"


def lacking(available: str, needed: Channels, model: str) -> str | None:
    """Why scans with `available` channels cannot feed a model that sees `needed` (None if they can)."""
    have = Channels(available)
    for part, wanted, present in (("depth", needed.depth, have.depth), ("colour", needed.colour, have.colour)):
        if wanted and not present:
            return f"has no {part}, but model {model} learned {needed.name} scans"
    return None
