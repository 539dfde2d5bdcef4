"""Give a benchmark bundle the head the current code trains, without retraining its GAN.

    python -m benchmarks.refresh_head [--bundles DIR ...] [--calibration-only]

When only the head's training changed (train/head.py, the head_* settings), `train` would rebuild
the same generator, critic and encoder (same seed, same steps) and then this head: so the bundle's
GAN and encoder are kept, a head is trained with the current defaults (same seeds as `train`, on
the data its model.json names, built-in synthetic scans included), every mode is recalibrated, and
segmenter.pt and model.json are rewritten in place. model.json records the new head settings, the
head's and calibration's new seconds, and the total minutes as if trained in one run. With
--calibration-only the head is kept too and only the calibration (how the components become a
score) is redone. Default: the four Kinect benchmark bundles.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from anomaly_gan.bundle.meta import MODES, read_meta
from anomaly_gan.bundle.store import export_networks, load_bundle, write_meta
from anomaly_gan.train.config import TrainConfig
from anomaly_gan.train.run import recalibrate, retrain_head
from benchmarks.kinect import KINECT, MODELS, SPLIT, block_split


def refresh(folder: Path, calibration_only: bool) -> None:
    meta = read_meta(folder)
    data = meta.training.config.get("data")  # None: the built-in synthetic scans
    config = TrainConfig(name=meta.name, objective=meta.objective, data=Path(data) if data else None)
    if calibration_only:
        bundle = recalibrate(load_bundle(folder), config, modes=MODES)
    else:
        bundle = retrain_head(load_bundle(folder), config, modes=MODES)
        export_networks(folder, {"segmenter": bundle.segmenter}, meta.network)
    write_meta(folder, replace(bundle.meta, default_mode=meta.default_mode))
    training = bundle.meta.training
    print(f"{folder}: head {training.head_seconds / 60:.1f} min, calibration {training.calibration_seconds / 60:.1f} "
          f"min; training now {training.minutes:.1f} min in all", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", nargs="+", type=Path,
                        default=[MODELS / n for n in ("sphere-gan", "rectangle-gan", "cylinder-gan", "sphere-wgan-gp")])
    parser.add_argument("--calibration-only", action="store_true", help="keep the head, redo the calibration")
    args = parser.parse_args()
    block_split(KINECT, SPLIT)  # the Kinect bundles' training data: links under a scratch folder
    for folder in args.bundles:
        refresh(folder, args.calibration_only)


if __name__ == "__main__":
    main()
