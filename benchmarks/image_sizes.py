"""Training and detection cost by network size: 32, 64 and 128 pixels on this machine.

    python -m benchmarks.image_sizes [--sizes 32 64 128] [--steps 40] [--out DIR]

For each size, a short `train` on the real Kinect sphere scans (64x64 captures, resized to the
network: upsampled at 128) with default networks and batch; step times come from the bundle's
train_log.jsonl (first 5 GAN steps left out as warm-up). Then `Detector.score` in fast mode on the
same 375 scans (speed only: they are its training scans). Last, a 128 bundle is trained and used on
synthetic 128x128 scans (`synth --size 128`). Writes image_sizes.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import torch

from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.data.layouts import find_scans, iter_scans
from anomaly_gan.data.synth_sets import synthesise
from anomaly_gan.detect.detector import Detector
from anomaly_gan.detect.judge import DetectOptions
from anomaly_gan.train.config import TrainConfig
from anomaly_gan.train.run import train
from benchmarks.protocol import KINECT, ROOT, Report, machine, scratch, timed_score

WORK = scratch("image-sizes")
WARM_UP = 5


def step_seconds(bundle: Path) -> dict[str, float]:
    """Mean seconds per step of each training phase, from the bundle's log."""
    rows = [json.loads(line) for line in (bundle / "train_log.jsonl").read_text().splitlines()]
    return {
        phase: float(
            np.mean([r["seconds"] for r in rows if r["phase"] == phase and (phase != "gan" or r["step"] > WARM_UP)])
        )
        for phase in ("gan", "encoder", "head")
    }


def short_training(name: str, data: Path, size: int, steps: int) -> Path:
    config = TrainConfig(
        name=name,
        data=data,
        out=WORK / f"models-{size}",
        image_size=size,
        steps=steps,
        encoder_steps=steps // 2,
        head_steps=steps // 2,
        device="cpu",
    )
    return train(config, lambda *a: None, force=True).path


def fast_rate(bundle: Path, folder: Path) -> tuple[int, float]:
    detector = Detector(load_bundle(bundle), DetectOptions("fast"), torch.device("cpu"))
    scans = [s for _, s in iter_scans(find_scans(folder).refs)]
    detector.score(scans[:64])  # warm-up
    return len(scans), timed_score(detector, scans)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "kinect")
    args = parser.parse_args()
    batch = TrainConfig(name="sphere").batch_size
    report = Report(args.out / "image_sizes.md")
    report.add(
        "# Network size: training step time and detection speed",
        "",
        f"Machine: {machine()}, CPU only. Kinect sphere scans (375, captured at 64x64, resized to the "
        f"network), objective gan, default width and batch {batch}; {args.steps} GAN steps, "
        f"{args.steps // 2} encoder and head steps per run (step times from train_log.jsonl, first "
        f"{WARM_UP} GAN steps left out). Detection: fast mode on the same scans.",
        "",
        "| network | GAN step s | images/s (GAN) | encoder step s | head step s | fast detect scans/s |",
        "|---:|---:|---:|---:|---:|---:|",
    )
    for size in args.sizes:
        bundle = short_training("sphere", KINECT, size, args.steps)
        s = step_seconds(bundle)
        _, rate = fast_rate(bundle, KINECT / "sphere")
        report.add(
            f"| {size}x{size} | {s['gan']:.3f} | {batch / s['gan']:.0f} | {s['encoder']:.3f} | "
            f"{s['head']:.3f} | {rate:.0f} |"
        )
    synthetic = WORK / "synthetic-128"
    shutil.rmtree(synthetic, ignore_errors=True)
    list(synthesise(synthetic / "sphere", "sphere", 120, size=128))
    bundle = short_training("sphere", synthetic, 128, args.steps)
    count, rate = fast_rate(bundle, synthetic / "sphere")
    report.add(
        "",
        f"Synthetic 128x128 spheres (`synth --size 128`, 120 scans): a 128 bundle trained "
        f"({step_seconds(bundle)['gan']:.3f} s per GAN step) and scored all {count} in fast mode at "
        f"{rate:.0f} scans/s.",
    )


if __name__ == "__main__":
    main()
