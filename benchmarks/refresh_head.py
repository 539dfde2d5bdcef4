"""Give a benchmark bundle the head the current code trains, without retraining its GAN.

    python -m benchmarks.refresh_head [--bundles sphere-gan rectangle-gan ...]

When only the head's training changed (train/head.py, the head_* settings), `train` would rebuild
the same generator, critic and encoder (same seed, same steps) and then this head: so the bundle's
GAN and encoder are kept, a head is trained with the current defaults (same seeds as `train`),
every mode is recalibrated, and segmenter.pt and model.json are rewritten in place. model.json
records the new head settings, the head's and calibration's new seconds, and the total minutes as
if trained in one run.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from anomaly_gan.bundle.meta import MODES, read_meta
from anomaly_gan.bundle.store import export_networks, load_bundle, write_meta
from anomaly_gan.train.config import TrainConfig
from anomaly_gan.train.run import retrain_head
from benchmarks.kinect import KINECT, MODELS, SPLIT, block_split


def refresh(name: str, train_root: Path) -> None:
    folder = MODELS / name
    meta = read_meta(folder)
    config = TrainConfig(name=meta.name, objective=meta.objective, data=train_root)
    bundle = retrain_head(load_bundle(folder), config, modes=MODES)
    export_networks(folder, {"segmenter": bundle.segmenter}, meta.network)
    write_meta(folder, replace(bundle.meta, default_mode=meta.default_mode))
    training = bundle.meta.training
    print(f"{name}: head {training.head_seconds / 60:.1f} min, calibration {training.calibration_seconds / 60:.1f} "
          f"min; training now {training.minutes:.1f} min in all", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", nargs="+", default=["sphere-gan", "rectangle-gan", "cylinder-gan",
                                                         "sphere-wgan-gp"])
    train_root = block_split(KINECT, SPLIT)["train"]
    for name in parser.parse_args().bundles:
        refresh(name, train_root)


if __name__ == "__main__":
    main()
