"""Training settings and their defaults, in one place (the CLI only exposes them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from anomaly_gan.detect.invert import InvertSettings
from anomaly_gan.models.dcgan import NetConfig


@dataclass(frozen=True)
class TrainConfig:
    name: str
    objective: str = "gan"
    data: Path | None = None  # class root or class folder; None = built-in synthetic scans
    out: Path = Path("models")
    steps: int | None = None  # generator updates; None = the objective's default_steps
    batch_size: int = 64
    width: int = 32
    latent: int = 100
    augment: bool = True  # DiffAugment-style translation + brightness on real and fake alike
    ema: float = 0.999  # EMA decay of generator weights (0 = off)
    spectral_norm: bool = False
    encoder_steps: int = 800
    kappa: float = 1.0
    val_block: int = 25  # scans per block of consecutive frames
    val_every: int = 4  # every n-th block is held out for calibration (several blocks: drift across a session)
    far: float = 0.01
    min_scans: int = 32
    seed: int = 0
    device: str = "auto"
    checkpoint_every: int = 100
    sample_every: int = 100
    synth_count: int = 375
    invert: InvertSettings = field(default_factory=InvertSettings)

    @property
    def total_steps(self) -> int:
        from anomaly_gan.train.objectives import OBJECTIVES

        return self.steps or OBJECTIVES[self.objective].default_steps

    @property
    def bundle_dir(self) -> Path:
        return self.out / f"{self.name}-{self.objective}"

    def net_config(self, critic_norm: str) -> NetConfig:
        return NetConfig(latent=self.latent, width=self.width, critic_norm=critic_norm,
                         spectral_norm=self.spectral_norm)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["data"] = str(self.data) if self.data else None
        d["out"] = str(self.out)
        return d
