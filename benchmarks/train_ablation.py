"""Which small-data aids earn their place: DiffAugment-style augmentation, generator EMA, spectral norm.

    python -m benchmarks.train_ablation [--shape rectangle] [--objective gan]

Trains the default bundle and one variant per aid (switched off, or on for spectral norm) on the
Kinect block split's training scans, then measures each on scans it never trained on that are not
the test split either: its own validation blocks (good) against the training blocks of the other
two classes (cross-class) and against fresh defect-injected copies of those validation blocks
(other defects than the ones calibration saw). Writes reports/kinect/train_ablation.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.detect.detector import Detector
from anomaly_gan.detect.judge import DetectOptions
from benchmarks.protocol import (
    CLASSES,
    KINECT,
    MODELS,
    OTHER_EVERY,
    ROOT,
    SPLIT,
    VALIDATION_COPIES,
    VALIDATION_SEED,
    Report,
    auroc,
    block_split,
    machine,
    other_classes,
    train_bundle,
    validation_of,
)

VARIANTS = {  # name -> TrainConfig overrides; "default" is the shipped setting
    "default (augment + EMA)": {},
    "no augment": {"augment": False},
    "no EMA": {"ema": 0.0},
    "+ spectral norm": {"spectral_norm": True},
    "2600 steps": {"steps": 2600},  # what the 15-minute budget leaves room for (default: 1500)
}


def folder_for(variant: str) -> Path:
    if not VARIANTS[variant]:
        return MODELS  # the benchmarks' default bundles
    return ROOT / "models" / "kinect-ablation" / variant.replace(" ", "").replace("+", "with-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="rectangle", choices=CLASSES)
    parser.add_argument("--objective", default="gan")
    args = parser.parse_args()
    train_root = block_split(KINECT, SPLIT)["train"]
    report = Report(ROOT / "reports" / "kinect" / "train_ablation.md")
    report.add(
        f"# Small-data aids: {args.shape} {args.objective}, Kinect training blocks\n",
        f"Machine: {machine()}. Each row is a full default-length training run with one change. Good: "
        f"the bundle's validation blocks; cross-class: every {OTHER_EVERY}th training scan of the other "
        f"classes; injected: {VALIDATION_COPIES} evaluation-defect copies of each validation scan (stream "
        f"{VALIDATION_SEED}). No test-block scan is used.\n",
        "| variant | train min | fast cross-class | fast injected | refine cross-class | refine injected |",
        "|---|---|---|---|---|---|",
    )
    for variant, overrides in VARIANTS.items():
        bundle, minutes = train_bundle(args.shape, args.objective, train_root, folder_for(variant), **overrides)
        data = validation_of(bundle, args.shape, train_root)
        good, injected, others = data.good, data.bad, other_classes(data, args.shape)
        cells = []
        for mode in ("fast", "refine"):
            detector = Detector(load_bundle(bundle), DetectOptions(mode), torch.device("cpu"))
            normal = detector.score(good).scores
            cells += [f"{auroc(normal, detector.score(some).scores):.3f}" for some in (others, injected)]
        row = f"| {variant} | {minutes:.1f} | " + " | ".join(cells) + " |"
        report.add(row)


if __name__ == "__main__":
    main()
