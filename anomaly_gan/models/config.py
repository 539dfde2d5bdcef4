"""What rebuilds the networks, stored in model.json: plain values, no torch, so that reading a
bundle's description or the CLI's defaults does not load torch (commands check paths first)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

IMAGE_SIZES = {32: 3, 64: 4, 128: 5}  # network size -> stride-2 layers down to 4x4


@dataclass(frozen=True)
class NetConfig:
    """Everything needed to rebuild the networks; stored in model.json."""

    latent: int = 100
    channels: int = 4  # how many of the scan's channels the networks see: 4, 3 or 1 (`inputs`)
    width: int = 32  # base feature count; layers use width x 1, 2, 4, 8 (x 16 at 128)
    image_size: int = 64  # 32, 64 or 128: one stride-2 layer per halving down to 4x4
    inputs: str = "rgbd"  # rgbd | rgb | depth (data.channels)
    critic_norm: str = "batch"  # batch | layer | none
    spectral_norm: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SegmenterConfig:
    channels: int = 4  # of the scan; the head sees three times as many
    widths: tuple[int, ...] = (8, 16, 32, 64)  # per resolution, full size down (90 MFLOP per 64x64 scan)

    def to_dict(self) -> dict:
        return asdict(self)
