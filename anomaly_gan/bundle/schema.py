"""The shape of model.json, checked (pydantic, strict) before any of it is used.

A hand-edited or damaged model.json used to surface as a traceback deep in scoring, or worse, be
scored with: a threshold of NaN flags nothing, a string where a number goes, an image size of
100,000 (OpenCV then asks for 30 GB). Every field that detection reads is typed and bounded here,
and the first problem becomes one line naming the field: `calibration.fast.threshold: Input
should be a finite number`. Unknown extra keys are ignored (later versions may add some).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from anomaly_gan.bundle.calibration import Component, FindingName
from anomaly_gan.typed_json import Bounded, Count, Finite, Modes, NonNegative, first_problem
from anomaly_gan.typed_json import Strict as _Strict


class Network(_Strict):
    latent: Annotated[int, Field(ge=1, le=4096)]
    channels: Literal[1, 3, 4]
    width: Annotated[int, Field(ge=1, le=1024)]
    image_size: Literal[32, 64, 128]
    inputs: Literal["rgbd", "rgb", "depth"] = "rgbd"
    critic_norm: Literal["batch", "layer", "none"] = "batch"
    spectral_norm: bool = False


class Depth(_Strict):
    near: Finite
    far: Finite
    unit: Literal["mm", "m", "8-bit", "none"]

    @model_validator(mode="after")
    def _ordered(self) -> Depth:
        if not self.near < self.far:
            raise ValueError(f"the depth range must have near < far (got {self.near} and {self.far})")
        return self


class Normalisation(_Strict):
    depth: Depth


class Invert(_Strict):
    restarts: Annotated[int, Field(ge=0, le=64)] = 1
    steps: Annotated[int, Field(ge=0, le=10_000)] = 20
    lr: NonNegative = 0.05
    kappa: NonNegative = 1.0
    prior: NonNegative = 1e-3
    seed_restarts: Annotated[int, Field(ge=1, le=64)] = 3
    seed_steps: Annotated[int, Field(ge=0, le=10_000)] = 19
    seed_lr_z: NonNegative = 0.05
    seed_lr_g: NonNegative = 6e-9


Spread = Annotated[float, Field(allow_inf_nan=False, gt=0)]


class Finding(_Strict):
    weights: dict[Component, Annotated[float, Field(allow_inf_nan=False, ge=0, le=1e6)]]
    origin: str = ""
    mean: Bounded
    std: Spread


class Calibration(_Strict):
    mean: dict[str, Bounded]
    std: dict[str, Spread]
    findings: Annotated[dict[FindingName, Finding], Field(min_length=1)]
    good_scores: Annotated[list[Bounded], Field(min_length=1)]
    far: Annotated[float, Field(allow_inf_nan=False, gt=0, lt=1)]
    threshold: Bounded

    @model_validator(mode="after")
    def _weighted_components_are_described(self) -> Calibration:
        weighted = {k for f in self.findings.values() for k in f.weights}
        missing = sorted(k for k in weighted if k not in self.mean or k not in self.std)
        if missing:
            raise ValueError(f"weights for {', '.join(missing)} without their good-scan mean and spread")
        return self


class Training(_Strict):
    data: str
    train_scans: Count
    validation_scans: Count
    validation_ids: list[str]
    steps: Count
    encoder_steps: Count
    seconds: NonNegative
    device: str
    config: dict
    train_ids: list[str] = []
    default_steps: Count = 0
    stages: dict[str, NonNegative] = {}
    world_size: Annotated[int, Field(ge=1)] = 1
    grayscale: bool = False


class Framing(_Strict):
    kind: Literal["object", "full"] = "object"
    margin: Annotated[float, Field(allow_inf_nan=False, ge=0, le=4)] = 0.25
    side: Annotated[int, Field(ge=0, le=4096)] = 0


class Segmenter(_Strict):
    channels: Literal[1, 3, 4]
    widths: Annotated[list[Annotated[int, Field(ge=1, le=1024)]], Field(min_length=1, max_length=8)]


class ModelJson(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^/\\\x00]+$")]
    objective: Literal["gan", "lsgan", "wgan-clip", "wgan-gp"]
    network: Network
    normalisation: Normalisation
    invert: Invert
    calibration: Annotated[dict[Modes, Calibration], Field(min_length=1)]
    training: Training
    framing: Framing
    segmenter: Segmenter | None = None
    default_mode: Modes = "refine"
    package_version: str = "unknown"

    @model_validator(mode="after")
    def _consistent(self) -> ModelJson:
        if self.calibration and self.default_mode not in self.calibration:
            raise ValueError(f"default_mode {self.default_mode!r} has no calibration")
        if self.segmenter is not None and self.segmenter.channels != self.network.channels:
            raise ValueError(f"segmenter sees {self.segmenter.channels} channels, the networks {self.network.channels}")
        return self


class UncalibratedModelJson(ModelJson):
    """A bundle read to be calibrated again (an older format): everything but its calibration."""

    calibration: dict[Modes, Calibration] = {}


def check_model_json(raw: dict, calibrated: bool = True) -> str | None:
    """None when `raw` has model.json's shape, else the first problem in one line: where, and what."""
    return first_problem(ModelJson if calibrated else UncalibratedModelJson, raw)
