"""Training settings and their defaults, in one place (the CLI only exposes them).

The whole config, the objective's settings resolved, is recorded in the bundle's training summary
(`to_dict`, read back by `from_dict`). Each training stage is handed only what it reads, drawn from
the config by a property of the same name: `DataStage`, `GanStage`, `EncoderStage`, `HeadStage` and
`CalibrationStage`, so a stage's settings are visible in its signature.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from anomaly_gan.bundle.meta import InvertSettings, known_fields
from anomaly_gan.data.channels import Channels
from anomaly_gan.data.framing import Framing
from anomaly_gan.data.simulate import KINDS
from anomaly_gan.models.config import NetConfig, SegmenterConfig
from anomaly_gan.train.objective_settings import DEFAULT_STEPS

if TYPE_CHECKING:  # the objectives need torch; the CLI reads these defaults before loading it
    from anomaly_gan.train.objective_settings import ObjectiveSettings
    from anomaly_gan.train.objectives import Objective


@dataclass(frozen=True)
class DataStage:
    """What reading and splitting the good scans reads (train.data.load_training_data)."""

    channels: str | None  # None: what the scans hold
    image_size: int
    framing: Framing
    min_scans: int
    val_block: int
    val_every: int
    kinds: tuple[str, ...]  # simulated on held-out scans to fit the score weights
    seed: int


@dataclass(frozen=True)
class GanStage:
    """What the GAN loop reads (train.trainer.train_gan)."""

    steps: int  # generator updates in all, counted across resumes
    batch_size: int  # per rank
    latent: int
    augment: bool
    ema: float
    precision: str  # resolved: bf16 or fp32


@dataclass(frozen=True)
class EncoderStage:
    """What the encoder loop reads (train.trainer.train_encoder)."""

    steps: int
    batch_size: int  # per rank
    kappa: float  # weight of the critic-feature term, the one scoring uses
    precision: str


@dataclass(frozen=True)
class HeadStage:
    """What the segmentation head's training reads (train.head)."""

    steps: int
    batch: int
    lr: float
    jitter: bool
    kinds: tuple[str, ...]  # simulated defect kinds (data.simulate)
    network: SegmenterConfig  # its channels those of `channels`
    channels: Channels
    seed: int
    precision: str


@dataclass(frozen=True)
class CalibrationStage:
    """What calibration reads besides the bundle's networks and inversion settings."""

    far: float
    batch_size: int
    seed: int


@dataclass(frozen=True)
class TrainConfig:
    name: str
    objective: str = "gan"
    objective_settings: ObjectiveSettings | None = None  # None: the objective's own DEFAULTS
    data: Path | None = None  # class root or class folder; None = built-in synthetic scans
    out: Path = Path("models")
    steps: int | None = None  # generator updates; None = the objective's default_steps
    batch_size: int = 64
    channels: str | None = None  # rgbd | rgb | depth; None: what the training scans hold (data.channels)
    image_size: int = 64  # 32 | 64 | 128 (models.config.IMAGE_SIZES); scans are resized to it
    width: int = 32
    latent: int = 100
    augment: bool = True  # DiffAugment-style translation + brightness on real and fake alike
    ema: float = 0.999  # EMA decay of generator weights (0 = off)
    spectral_norm: bool = False
    encoder_steps: int = 800
    encoder_lr: float = 2e-4
    encoder_betas: tuple[float, float] = (0.5, 0.999)
    framing: Framing = field(default_factory=Framing)  # object-centred crops (or Framing("full"))
    head: bool = True  # train the segmentation head (detect.components: the `head` component)
    head_steps: int = 2400  # Kinect sphere validation, image AUROC: 1200 steps 0.796-0.815, 2400 0.821-0.845
    head_batch: int = 32
    head_lr: float = 1e-3
    head_jitter: bool = True  # place, turn and light training scans differently for the head (train.head.jitter)
    head_kinds: tuple[str, ...] = KINDS  # simulated defect kinds the head trains on (data.simulate)
    segmenter: SegmenterConfig = field(default_factory=SegmenterConfig)
    val_block: int = 25  # scans per block of consecutive frames
    # Every n-th block is held out for calibration (several blocks: drift across a session). A third, so
    # that 300 scans hold out the 99 a 1% false-alarm promise needs (bundle.calibration.conformal_threshold).
    val_every: int = 3
    far: float = 0.01
    min_scans: int = 32
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # auto | bf16 | fp32 (anomaly_gan.precision); run.train records the resolved one
    checkpoint_every: int = 100
    sample_every: int = 100
    synth_count: int = 375
    invert: InvertSettings = field(default_factory=InvertSettings)  # its kappa also weights encoder training

    def build_objective(self) -> Objective:
        from anomaly_gan.train.objectives import OBJECTIVES

        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; choose from {', '.join(OBJECTIVES)}")
        return OBJECTIVES[self.objective](self.objective_settings)

    @property
    def total_steps(self) -> int:
        return self.steps or DEFAULT_STEPS[self.objective]

    @property
    def bundle_dir(self) -> Path:
        return self.out / f"{self.name}-{self.objective}"

    @property
    def channel_set(self) -> Channels:
        """The networks' inputs; `channels` is resolved from the data before training starts."""
        return Channels(self.channels or "rgbd")

    @property
    def data_stage(self) -> DataStage:
        return DataStage(
            channels=self.channels,
            image_size=self.image_size,
            framing=self.framing,
            min_scans=self.min_scans,
            val_block=self.val_block,
            val_every=self.val_every,
            kinds=self.head_kinds,
            seed=self.seed,
        )

    @property
    def gan_stage(self) -> GanStage:
        return GanStage(self.total_steps, self.batch_size, self.latent, self.augment, self.ema, self.precision)

    @property
    def encoder_stage(self) -> EncoderStage:
        return EncoderStage(self.encoder_steps, self.batch_size, self.invert.kappa, self.precision)

    @property
    def head_stage(self) -> HeadStage:
        return HeadStage(
            steps=self.head_steps,
            batch=self.head_batch,
            lr=self.head_lr,
            jitter=self.head_jitter,
            kinds=self.head_kinds,
            network=replace(self.segmenter, channels=self.channel_set.count),
            channels=self.channel_set,
            seed=self.seed,
            precision=self.precision,
        )

    @property
    def calibration_stage(self) -> CalibrationStage:
        return CalibrationStage(self.far, self.batch_size, self.seed)

    def net_config(self, critic_norm: str) -> NetConfig:
        return NetConfig(
            latent=self.latent,
            channels=self.channel_set.count,
            width=self.width,
            image_size=self.image_size,
            inputs=self.channel_set.name,
            critic_norm=critic_norm,
            spectral_norm=self.spectral_norm,
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["objective_settings"] = self.build_objective().settings.to_dict()
        d["data"] = str(self.data) if self.data else None
        d["out"] = str(self.out)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """The config a bundle's training summary recorded (to_dict); keys this version does not know
        are left out and settings it added take their defaults, so older bundles still read."""
        from anomaly_gan.train.objective_settings import ObjectiveSettings

        d = known_fields(cls, d)
        nested = {
            "objective_settings": lambda v: ObjectiveSettings(**{**v, "betas": tuple(v["betas"])}),
            "framing": lambda v: Framing(**v),
            "invert": lambda v: InvertSettings(**v),
            "segmenter": lambda v: SegmenterConfig(**{**v, "widths": tuple(v["widths"])}),
            "data": Path,
            "out": Path,
            "encoder_betas": tuple,
            "head_kinds": tuple,
        }
        return cls(**{k: nested[k](v) if k in nested and v is not None else v for k, v in d.items()})
