"""model.json as typed values: everything needed to preprocess and score exactly as at calibration.

`BundleMeta.to_dict()` is the JSON on disk; `from_dict` reads it back. Format 2 added the framing
(object-centred crops) and the segmentation head; format 3 the two findings (wrong part, defect)
with conformal thresholds. Older bundles stop with one line saying what to do: a format-2 bundle is
calibrated again (`retrain-head --calibration-only`, minutes: its networks are kept), a format-1
bundle retrained. A single score cannot be split into two findings without the held-out scans.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from anomaly_gan import __version__
from anomaly_gan.bundle.calibration import COLOUR, DEPTH, Calibration
from anomaly_gan.bundle.schema import check_model_json
from anomaly_gan.data.channels import CHANNEL_SETS, Channels
from anomaly_gan.data.framing import Framing
from anomaly_gan.data.tensor import DepthScale
from anomaly_gan.models.config import NetConfig, SegmenterConfig

FORMAT = "anomaly-gan-bundle"
FORMAT_VERSION = 3
READABLE_VERSIONS = (3,)
UPGRADABLE_VERSIONS = (2,)  # `retrain-head --calibration-only` gives them format 3's calibration
MODES = ("fast", "refine", "seed")
DEFAULT_MODE = "refine"  # what detect, evaluate and view use unless told otherwise
CHANNEL_NAMES = ("R", "G", "B", "D")  # of the 4-channel scan array; a bundle lists those it sees
COLOUR_NORMALISATION = "value / 127.5 - 1"
DEPTH_ENCODING = "nearness: depth near -> 1, far -> -0.8, missing -> -1; range fitted on the training scans"


@dataclass(frozen=True)
class InvertSettings:
    """How detection finds a scan's latent code (detect.invert); kappa is also the encoder's."""

    restarts: int = 1  # refine: random starts besides E(x); 4 bought no AUROC (benchmarks/refine_restarts.py)
    steps: int = 20
    lr: float = 0.05
    kappa: float = 1.0  # weight of the critic-feature residual, in encoder training and in refine
    prior: float = 1e-3
    seed_restarts: int = 3
    seed_steps: int = 19
    seed_lr_z: float = 0.05
    seed_lr_g: float = 6e-9


# Mean object residual (colour and depth, fast mode) on held-out good scans: 0.30-0.38 for the
# default Kinect and demo bundles (2026-11-23). Far above that, the generator has not learnt the class.
TRAINED_RESIDUAL = "0.30-0.38"
UNDERTRAINED_RESIDUAL = 0.6


@dataclass(frozen=True)
class TrainingSummary:
    """Where the bundle came from: data, split, steps, time, machine and the full training config."""

    data: str
    layouts: list[str]
    train_scans: int
    validation_scans: int
    validation_ids: list[str]
    validation_split: str
    skipped_files: int
    steps: int
    encoder_steps: int
    seconds: float  # GAN + encoder
    calibration_seconds: float
    device: str
    torch: str
    mean_good_score: float
    config: dict  # the training config as recorded (train.config.TrainConfig.to_dict())
    finished: str
    head_seconds: float = 0.0  # the segmentation head (format 2)
    train_ids: list[str] = field(default_factory=list)  # so evaluate can warn about optimistic figures
    default_steps: int = 0  # the objective's default GAN steps, to judge a short run
    stages: dict[str, float] = field(default_factory=dict)  # wall seconds: data, gan, encoder, head, ...
    world_size: int = 1  # processes that trained it together (torchrun); batch_size is their sum
    replica_digests: list[str] = field(default_factory=list)  # each rank's final weights: all equal
    grayscale: bool = False  # learned from grayscale images: colour scans are refused

    @property
    def minutes(self) -> float:
        """Every stage's wall time together (older bundles: GAN, encoder, head and calibration)."""
        if self.stages:
            return sum(self.stages.values()) / 60
        return (self.seconds + self.head_seconds + self.calibration_seconds) / 60


@dataclass
class BundleMeta:
    name: str
    objective: str
    network: NetConfig
    depth: DepthScale
    invert: InvertSettings
    calibration: dict[str, Calibration]
    training: TrainingSummary
    framing: Framing = field(default_factory=lambda: Framing("full"))
    segmenter: SegmenterConfig | None = None  # the segmentation head, if the bundle has one
    default_mode: str = DEFAULT_MODE
    package_version: str = field(default=__version__)

    @property
    def label(self) -> str:
        return f"{self.name}-{self.objective}"

    @property
    def channels(self) -> Channels:
        return Channels(self.network.inputs)

    def undertrained(self) -> str:
        """Why this bundle looks undertrained ("" if it does not): a GAN run under half its objective's
        default length, or held-out good scans it reconstructs far worse than trained bundles do."""
        t, reasons = self.training, []
        if t.default_steps and t.steps < t.default_steps / 2:
            reasons.append(f"{t.steps} GAN steps, under half the default {t.default_steps}")
        fast = self.calibration.get("fast")
        if fast is not None and {COLOUR, DEPTH} <= set(fast.mean):
            error = (fast.mean[COLOUR] + fast.mean[DEPTH]) / 2
            if error > UNDERTRAINED_RESIDUAL:
                reasons.append(
                    f"held-out good scans reconstructed with error {error:.2f} (trained bundles: {TRAINED_RESIDUAL})"
                )
        return "; ".join(reasons)

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "package_version": self.package_version,
            "name": self.name,
            "objective": self.objective,
            "network": self.network.to_dict(),
            "channels": [CHANNEL_NAMES[i] for i in self.channels.indices],
            "normalisation": {
                "colour": COLOUR_NORMALISATION,
                "depth": self.depth.to_dict(),
                "depth_encoding": DEPTH_ENCODING,
            },
            "invert": asdict(self.invert),
            "default_mode": self.default_mode,
            "calibration": {mode: c.to_dict() for mode, c in self.calibration.items()},
            "training": asdict(self.training),
            "framing": asdict(self.framing),
            "segmenter": self.segmenter.to_dict() if self.segmenter else None,
        }

    @classmethod
    def from_dict(cls, d: dict) -> BundleMeta:
        """Raises KeyError/TypeError on a malformed file; the loader turns that into one line.

        Keys a section's dataclass does not know are dropped: a later version may add some."""
        training = known_fields(TrainingSummary, d["training"])
        training.setdefault("calibration_seconds", 0.0)
        segmenter = d.get("segmenter")
        return cls(
            name=d["name"],
            objective=d["objective"],
            network=NetConfig(**known_fields(NetConfig, d["network"])),
            depth=DepthScale(**known_fields(DepthScale, d["normalisation"]["depth"])),
            invert=InvertSettings(**known_fields(InvertSettings, d["invert"])),
            calibration={mode: Calibration.from_dict(c) for mode, c in d["calibration"].items()},
            training=TrainingSummary(**training),
            framing=Framing(**known_fields(Framing, d["framing"])),
            segmenter=_segmenter(segmenter) if segmenter else None,
            default_mode=d.get("default_mode", DEFAULT_MODE),
            package_version=d.get("package_version", "unknown"),
        )


def _segmenter(section: dict) -> SegmenterConfig:
    return SegmenterConfig(**known_fields(SegmenterConfig, section | {"widths": tuple(section["widths"])}))


def known_fields(kind: type, section: dict) -> dict:
    """`section` without the keys dataclass `kind` does not have (written by a later version)."""
    names = {f.name for f in fields(kind)}
    return {k: v for k, v in section.items() if k in names}


class BundleError(ValueError):
    """A model bundle that cannot be used; the message says which file and why."""


def read_meta(folder: Path, upgrade: bool = False) -> BundleMeta:
    """model.json alone (no networks): checked format version, typed. With `upgrade`, a bundle of
    an UPGRADABLE_VERSIONS format reads with no calibration, for the caller to calibrate again."""
    meta_path = Path(folder) / "model.json"
    if not meta_path.is_file():
        raise BundleError(f"{folder}: not a model bundle (no model.json)")
    try:
        raw = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"{meta_path}: unreadable ({e})") from None
    if not isinstance(raw, dict):
        raise BundleError(f"{meta_path}: not a bundle description (expected a JSON object)")
    version = raw.get("format_version")
    if upgrade and raw.get("format") == FORMAT and version in UPGRADABLE_VERSIONS:
        raw = raw | {"format_version": FORMAT_VERSION, "calibration": {}}
    if raw.get("format") != FORMAT or raw.get("format_version") not in READABLE_VERSIONS:
        advice = (
            f"calibrate it again: anomaly-gan retrain-head {folder} --calibration-only --force"
            if version in UPGRADABLE_VERSIONS
            else "retrain, or use the matching anomaly-gan"
        )
        raise BundleError(
            f"{meta_path}: bundle format {raw.get('format')!r} version {version!r}; this anomaly-gan reads "
            f"{FORMAT!r} versions {', '.join(map(str, READABLE_VERSIONS))} ({advice})"
        )
    network = raw.get("network")
    if not isinstance(network, dict):
        raise BundleError(f"{meta_path}: network: expected the networks' settings (a JSON object)")
    inputs, channels = network.get("inputs", "rgbd"), network.get("channels")
    if inputs not in CHANNEL_SETS or channels != Channels(inputs).count:
        raise BundleError(
            f"{meta_path}: network has {channels} channels for inputs {inputs!r}; anomaly-gan "
            "scores 4 (RGB-D), 3 (RGB) or 1 (depth)"
        )
    problem = check_model_json(raw, calibrated=bool(raw["calibration"]) or not upgrade)
    if problem:
        raise BundleError(f"{meta_path}: {problem}")
    try:
        return BundleMeta.from_dict(raw)
    except (KeyError, TypeError, ValueError) as e:
        detail = " ".join(str(e).split())
        raise BundleError(f"{meta_path}: malformed model.json ({type(e).__name__}: {detail})") from None


NETWORK_FILES = ("generator.pt", "critic.pt", "encoder.pt", "segmenter.pt")
ONNX_SCORER = "scorer.onnx"  # written by `anomaly-gan export --onnx`, beside the networks it came from
COMPONENTS_KEY, NETWORKS_KEY = "anomaly_gan.components", "anomaly_gan.networks"  # its metadata


def networks_digest(folder: Path) -> str:
    """A digest of the bundle's network files: an exported scorer.onnx records it, so one made from
    other networks (the bundle trained or its head retrained since) is refused, not run."""
    digest = hashlib.sha256()
    for name in NETWORK_FILES:
        path = folder / name
        if path.is_file():
            digest.update(name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]
