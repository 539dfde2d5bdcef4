"""Training data: where it comes from, what is held out, and the tensors the loop trains on."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from anomaly_gan.data.channels import Channels, channels_of, lacking
from anomaly_gan.data.layouts import find_scans, iter_scans, leaf_layout
from anomaly_gan.data.scan import Scan, ScanError
from anomaly_gan.data.simulate import simulate
from anomaly_gan.data.synth import SHAPES
from anomaly_gan.data.synth_sets import synthesise
from anomaly_gan.data.tensor import NO_DEPTH, DepthScale, framed_arrays
from anomaly_gan.detect.judge import silhouette_components
from anomaly_gan.train.config import DataStage, TrainConfig

SYNTHETIC_ROOT = Path("data/synthetic")


class TrainingError(ValueError):
    """Training cannot start; the message says why and what to do."""


@dataclass
class TrainingData:
    folder: Path
    layouts: list[str]
    scale: DepthScale
    channels: str  # what the networks see: --channels, or what the scans hold
    grayscale: bool  # every training image was grayscale
    train: torch.Tensor  # (N, 4, S, S) in the bundle's frame, all 4 channels (data.channels)
    validation: torch.Tensor
    validation_defective: torch.Tensor  # the held-out scans again, with simulated defects
    validation_ids: list[str]
    validation_silhouettes: dict[str, np.ndarray]  # size, aspect, distance of each held-out scan's object
    validation_defective_ids: list[str]
    skipped: list[str]
    train_ids: list[str]


def class_folder(config: TrainConfig, on_synth: Callable[[int], None] | None = None) -> Path:
    """The folder holding the class's good scans; built-in synthetic scans are made if absent."""
    if config.data is None:
        folder = SYNTHETIC_ROOT / config.name
        if not folder.exists():
            if config.name not in SHAPES:
                raise TrainingError(
                    f"no built-in synthetic scans for class {config.name!r} (they exist for "
                    f"{', '.join(SHAPES)}); give your scans with --data ROOT"
                )
            for i, _ in enumerate(synthesise(folder, config.name, config.synth_count, seed=0)):
                if on_synth:
                    on_synth(i + 1)
    elif (config.data / config.name).is_dir():
        folder = config.data / config.name
    elif config.data.is_dir() and (leaf_layout(config.data) or (config.data / "train").is_dir()):
        folder = config.data
    else:
        raise TrainingError(
            f"{config.data}: no class folder {config.name!r} in it, and it is not a class folder itself"
        )
    return folder / "train" if (folder / "train").is_dir() else folder


def block_split(n: int, block: int, every: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out every `every`-th block of `block` consecutive scans (never random frames,
    which would leave near-duplicate neighbours on both sides)."""
    blocks = np.arange(n) // block
    val = blocks % every == every // 2
    if not val.any():
        val = blocks == blocks.max()
    if val.all():
        raise TrainingError(f"{n} scans are too few to hold out a validation block of {block}")
    return np.flatnonzero(~val), np.flatnonzero(val)


def load_training_data(stage: DataStage, folder: Path) -> TrainingData:
    try:
        found = find_scans(folder)
    except ScanError as e:
        raise TrainingError(str(e)) from None
    scans: list[Scan] = []
    skipped = list(found.skipped)
    for _ref, scan in iter_scans([r for r in found.refs if r.label == "good"]):
        if isinstance(scan, ScanError):
            skipped.append(str(scan))
        else:
            scans.append(scan)
    if len(scans) < stage.min_scans:
        raise TrainingError(
            f"{folder}: {len(scans)} readable good scans; at least {stage.min_scans} are needed to learn a class"
        )
    sizes = Counter(f"{s.shape[1]}x{s.shape[0]}" for s in scans)
    if len(sizes) > 1:
        listed = ", ".join(f"{k} ({v})" for k, v in sizes.most_common())
        raise TrainingError(f"{folder}: mixed image sizes {listed}; preprocess them to one size first")
    available = channels_of(all(s.has_colour for s in scans), all(s.has_depth for s in scans))
    channels = stage.channels or available
    if lacking(available, Channels(channels), ""):
        raise TrainingError(
            f"{folder}: --channels {channels}, but these scans are {available} only; train with --channels {available}"
        )
    train_idx, val_idx = block_split(len(scans), stage.val_block, stage.val_every)
    try:
        scale = DepthScale.fit(scans[i] for i in train_idx) if Channels(available).depth else NO_DEPTH
    except ValueError as e:
        raise TrainingError(f"{folder}: {e}") from None

    def stack(some: list[Scan]) -> np.ndarray:
        return framed_arrays(some, scale, stage.image_size, stage.framing)[0]

    held_out = [scans[i] for i in val_idx]
    train, validation = stack([scans[i] for i in train_idx]), stack(held_out)
    defective, defective_ids = simulated_copies(validation, [s.id for s in held_out], replace(stage, channels=channels))
    return TrainingData(
        folder,
        sorted(found.layouts),
        scale,
        channels,
        Channels(channels).colour and all(s.grayscale for s in scans),
        torch.from_numpy(train),
        torch.from_numpy(validation),
        torch.from_numpy(defective),
        [s.id for s in held_out],
        silhouette_components(held_out, Channels(channels)),
        defective_ids,
        skipped,
        [scans[i].id for i in train_idx],
    )


def simulated_copies(
    arrays: np.ndarray, ids: list[str], stage: DataStage, copies: int = 2
) -> tuple[np.ndarray, list[str]]:
    """Each held-out scan `copies` times with a simulated defect (for fitting the score weights;
    the evaluation injector, data/defects.py, is never used in training or calibration)."""
    rng = np.random.default_rng([stage.seed, 11])
    out, out_ids = [], []
    for array, scan_id in zip(arrays, ids, strict=True):
        for k in range(copies):
            defective, mask = simulate(array, rng, stage.kinds, arrays, Channels(stage.channels))
            if mask.any():
                out.append(defective)
                out_ids.append(f"{scan_id}_sim{k}")
    if not out:
        raise TrainingError("no held-out scan is large enough to simulate a defect for calibration")
    return np.stack(out), out_ids
