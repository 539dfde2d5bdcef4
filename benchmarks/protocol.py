"""What every benchmark shares, in one place: paths (the project, its reports, scratch folders, the
Kinect data and bundles), seeds, the block split of the Kinect scans and the one validation protocol.

The data stays in ../shared; splits are folders of symbolic links under a scratch directory.
Split: blocks of 25 consecutive frames, every 4th block is test (three blocks in four train).
Validation (deciding a setting; never the test blocks): a bundle's own held-out training blocks,
3 evaluation-defect copies of each held-out scan (stream VALIDATION_SEED), and every 4th training
scan of the other classes as wrong parts.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from anomaly_gan.bundle.meta import read_meta
from anomaly_gan.data.defects import DEFECTS, inject
from anomaly_gan.data.layouts import ScanRef, find_scans, iter_scans
from anomaly_gan.data.scan import Scan, ScanError
from anomaly_gan.detect.detector import Detector
from anomaly_gan.detect.judge import ScanScores
from anomaly_gan.fsutil import atomic_write_text
from anomaly_gan.train.config import TrainConfig
from anomaly_gan.train.objectives import Objective
from anomaly_gan.train.run import train
from anomaly_gan.train.trainer import TrainState, build_state

ROOT = Path(__file__).resolve().parents[1]  # the project
REPORTS = ROOT / "reports"
KINECT = ROOT.parent / "shared" / "datasets" / "kinect-shapes"
CLASSES = ("rectangle", "cylinder", "sphere")
PUBLISHED = {"rectangle": (0.71, 0.68), "cylinder": (0.76, 0.87), "sphere": (0.79, 0.81)}
BASELINE_NN = {"rectangle": 0.70, "cylinder": 0.78, "sphere": 0.99}  # from the data set's README
MODELS = ROOT / "models" / "kinect-split"  # the benchmarks' default bundles (out of git)


def scratch(name: str) -> Path:
    """A benchmark's scratch folder under the temporary directory (bundles and splits it can remake)."""
    return Path(tempfile.gettempdir()) / f"anomaly-gan-{name}"


SPLIT = scratch("kinect-split")


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"


def block_split(
    root: Path, scratch: Path, block: int = 25, test_every: int = 4, classes: tuple[str, ...] = CLASSES
) -> dict[str, Path]:
    """Write scratch/train/<class>/ and scratch/test/<class>/ as links, each scan's files at the
    same place under its class folder as in `root` (every `test_every`-th block of `block`
    consecutive scans is test); returns the two roots."""
    for cls in classes:
        folder = root.resolve() / cls
        for i, ref in enumerate(find_scans(folder).refs):
            part = "test" if (i // block) % test_every == test_every - 1 else "train"
            for src in (path for path in (ref.rgb, ref.depth) if path):
                link = scratch / part / cls / src.relative_to(folder)
                link.parent.mkdir(parents=True, exist_ok=True)
                link.unlink(missing_ok=True)  # a link left by an earlier split may point elsewhere
                link.symlink_to(src)
    return {"train": scratch / "train", "test": scratch / "test"}


@dataclass
class Validation:
    """What a setting is decided on (never the test blocks): a default bundle trained on the block
    split's training part, its held-out validation scans, `copies` copies of each with one
    evaluation defect (a random stream the test tables do not use), and the scans it trained on."""

    bundle: Path
    train_root: Path
    good: list[Scan]
    bad: list[Scan]
    trained_on: list[Scan]


VALIDATION_SEED = 11  # the test tables inject with seeds 0 and 1


VALIDATION_COPIES = 3  # evaluation-defect copies of each held-out good scan
OTHER_EVERY = 4  # every 4th training scan of the other classes: the wrong parts


def validation(shape: str, objective: str, copies: int = VALIDATION_COPIES) -> Validation:
    roots = block_split(KINECT, SPLIT)
    folder, _ = train_bundle(shape, objective, roots["train"], MODELS)
    return validation_of(folder, shape, roots["train"], copies)


def validation_of(folder: Path, shape: str, train_root: Path, copies: int = VALIDATION_COPIES) -> Validation:
    """The validation scans of a bundle trained on `train_root` (its own held-out blocks)."""
    held_out = set(read_meta(folder).training.validation_ids)
    scans = [s for _, s in iter_scans(find_scans(train_root / shape).refs)]
    good = [s for s in scans if s.id in held_out]
    return Validation(
        folder,
        train_root,
        good,
        injected_copies(good, seed=VALIDATION_SEED, copies=copies),
        [s for s in scans if s.id not in held_out],
    )


def other_classes(data: Validation, shape: str) -> list[Scan]:
    """Every OTHER_EVERY-th training scan of the other classes: the wrong parts a bundle should flag."""
    return [
        s
        for cls in CLASSES
        if cls != shape
        for _, s in list(iter_scans(find_scans(data.train_root / cls).refs))[::OTHER_EVERY]
    ]


class Report:
    """Lines printed as they come and rewritten to the report file each time (survives a stop)."""

    def __init__(self, path: Path) -> None:
        self.path, self.lines = path, []

    def add(self, *lines: str) -> None:
        print("\n".join(lines), flush=True)
        self.lines += lines
        atomic_write_text(self.path, "\n".join(self.lines) + "\n")


def train_bundle(name: str, objective: str, data: Path, out: Path, **overrides) -> tuple[Path, float]:
    """Train with default settings (plus overrides) unless the bundle exists; returns it and the
    minutes its training took (GAN, encoder and calibration, as recorded in model.json)."""
    config = TrainConfig(name=name, objective=objective, data=data, out=out, **overrides)
    folder = config.bundle_dir
    if not (folder / "model.json").exists():
        folder = train(config, lambda *a: None, force=True).path
    return folder, read_meta(folder).training.minutes


def untrained_state(config: TrainConfig, device: torch.device) -> tuple[Objective, TrainState]:
    """The objective and fresh networks and optimisers a training with `config` starts from: the
    step-time probes run train_gan / train_encoder on them."""
    objective = config.build_objective()
    return objective, build_state(config, config.net_config(objective.critic_norm), objective, device)


def timed_score(detector: Detector, scans: list) -> tuple[ScanScores, float]:
    """Detector.score and the scans/s it ran at (results come back to the CPU, so a GPU has finished)."""
    started = time.perf_counter()
    scored = detector.score(scans)
    return scored, len(scans) / (time.perf_counter() - started)


def auroc(normal: np.ndarray, anomalous: np.ndarray) -> float:
    y = np.r_[np.zeros(len(normal)), np.ones(len(anomalous))]
    return float(roc_auc_score(y, np.r_[normal, anomalous]))


def nearest_neighbour_scores(train_refs: list[ScanRef], refs: list[ScanRef]) -> np.ndarray:
    """The data set README's baseline: distance to the closest training scan on raw pixels."""

    def stack(rs):
        return np.stack(
            [np.dstack([s.rgb / 255.0, np.nan_to_num(s.depth) / 255.0]).ravel() for _, s in iter_scans(rs)]
        ).astype(np.float32)

    a, b = torch.from_numpy(stack(train_refs)), torch.from_numpy(stack(refs))
    return torch.cdist(b, a).min(dim=1).values.numpy()


def injected_copies(
    scans: list[Scan], seed: int, copies: int = 1, kinds: tuple[str, ...] = tuple(DEFECTS)
) -> list[Scan]:
    """Evaluation defects: each scan `copies` times with one of data/defects.py's named kinds, from
    a random stream of its own (never the simulator the head and the calibration train on)."""
    rng = np.random.default_rng([seed, 7])
    out = []
    for scan in scans:
        for _ in range(copies):
            try:
                out.append(inject(scan, kinds[rng.integers(len(kinds))], rng))
            except ScanError:
                continue
    return out
