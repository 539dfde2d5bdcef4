"""Training and detection on a CUDA GPU against the same machine's CPU, on the Kinect scans.

    python -m benchmarks.cuda_kinect [--data DIR] [--models DIR] [--out DIR] [--speed-only]

Needs CUDA. Per objective: GAN steps/s on the GPU (bf16 autocast) and on the CPU from a short
probe; then each class trained at default settings on the GPU (block split as in the other
benchmarks), and its test blocks scored in each mode on the GPU (cross-class AUROC, scans/s). For
the first bundle: CPU and GPU scores of the same scans compared, and fast/refine/seed speed on
both, beside the publication's unbatched seed search. Writes cuda_benchmark.md into --out
(--speed-only: one bundle, the speed section alone, cuda_speed.md).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.data.layouts import find_scans, iter_scans
from anomaly_gan.detect.detector import Detector
from anomaly_gan.detect.judge import DetectOptions
from anomaly_gan.train.config import TrainConfig
from anomaly_gan.train.data import load_training_data
from anomaly_gan.train.objectives import OBJECTIVES
from benchmarks.detect_kinect import unbatched_seed_rate
from benchmarks.protocol import (
    CLASSES,
    KINECT,
    PUBLISHED,
    ROOT,
    Report,
    auroc,
    block_split,
    machine,
    scratch,
    timed_score,
    train_bundle,
)
from benchmarks.train_kinect import probe

CUDA, CPU = torch.device("cuda"), torch.device("cpu")


def rate_and_scores(
    bundle: Path, mode: str, batch: int, device: torch.device, timed: list, scans: list | None = None
) -> tuple[float, np.ndarray | None, float]:
    """Scans/s over `timed`, scores of `scans` (default: of `timed`), and the bundle's threshold."""
    detector = Detector(load_bundle(bundle), DetectOptions(mode, batch), device)
    detector.score(timed[:batch])  # warm-up at the timed batch shape: cuDNN plans, lazy initialisation
    scored, rate = timed_score(detector, timed)
    return rate, detector.score(scans).scores if scans else scored.scores, detector.threshold


def speed_rows(bundle: Path, scans: list, report: Report) -> None:
    """Same scans, bundle and random starts on both devices: scans/s per batch size, and how far
    GPU scores and decisions are from the CPU's (cuDNN's TF32 convolutions on, then off)."""
    seed_rate = unbatched_seed_rate(Detector(load_bundle(bundle), DetectOptions("seed"), CUDA), scans)
    many = (scans * 8)[:1024]  # GPU timings need more than one batch's worth of work
    cpu = {}
    for mode, tf32 in (("fast", True), ("refine", True), ("refine", False), ("seed", True)):
        torch.backends.cudnn.allow_tf32 = tf32
        batches = (64, 256, 1024) if mode != "seed" else (64,)
        timed, agree = (many, scans) if mode != "seed" else (scans[:64], scans[::9])
        gpu = {b: rate_and_scores(bundle, mode, b, CUDA, timed, agree if b == 64 else None) for b in batches}
        if mode not in cpu:
            cpu[mode] = rate_and_scores(bundle, mode, 64, CPU, agree)
        cpu_rate, cpu_scores, threshold = cpu[mode]
        gpu_scores = gpu[64][1]
        spread = np.abs(gpu_scores - cpu_scores).max() / (cpu_scores.std() + 1e-12)
        flips = np.mean((gpu_scores > threshold) != (cpu_scores > threshold))
        rates = " | ".join(f"{gpu[b][0]:.0f}" if b in gpu else "-" for b in (64, 256, 1024))
        best = max(r for r, _, _ in gpu.values())
        name = mode if tf32 else f"{mode}, TF32 off"
        report.add(
            f"| {name} | {rates} | {cpu_rate:.1f} | {gpu[64][0] / cpu_rate:.0f}x | {spread:.3f} | "
            f"{flips:.1%} | {best / seed_rate:.0f}x |"
        )
    torch.backends.cudnn.allow_tf32 = True
    report.add("", f"Publication's unbatched seed search on the GPU: {seed_rate:.2f} scans/s.")


def quality_rows(
    objectives: list[str], roots: dict[str, Path], test: dict[str, list], models: Path, report: Report
) -> Path:
    """Step rates GPU vs CPU, then every class trained and scored on the GPU; returns the first bundle."""
    report.add(
        "## Training step rates (20-step probe after 3 warm-up steps, sphere)\n",
        "| objective | GPU steps/s | CPU steps/s | GPU/CPU | GPU real images/s |",
        "|---|---|---|---|---|",
    )
    base = TrainConfig(name="sphere", data=roots["train"])
    for name in objectives:
        config = replace(base, objective=name)
        data = load_training_data(config.data_stage, roots["train"] / "sphere")
        gpu_s, gpu_images, _ = probe(config, data.train.to(CUDA), 20)
        cpu_s, _, _ = probe(config, data.train, 20)
        report.add(f"| {name} | {1 / gpu_s:.1f} | {1 / cpu_s:.2f} | {cpu_s / gpu_s:.1f}x | {gpu_images:.0f} |")
    report.add(
        "",
        "## Full default runs on the GPU, scored on the GPU\n",
        "| class | objective | train min | cross-class AUROC fast / refine / seed | published | "
        "scans/s fast / refine / seed (batch 64) |",
        "|---|---|---|---|---|---|",
    )
    bundles = []
    for name in objectives:
        for cls in CLASSES:
            bundle, minutes = train_bundle(cls, name, roots["train"], models, device="cuda")
            bundles.append(bundle)
            others = [s for c in CLASSES if c != cls for s in test[c]]
            aurocs, rates = [], []
            for mode in ("fast", "refine", "seed"):
                detector = Detector(load_bundle(bundle), DetectOptions(mode, 64), CUDA)
                normal, rate = timed_score(detector, test[cls])
                aurocs.append(f"{auroc(normal.scores, detector.score(others).scores):.3f}")
                rates.append(f"{rate:.0f}")
            published = PUBLISHED[cls][0 if name == "gan" else 1]
            report.add(
                f"| {cls} | {name} | {minutes:.1f} | {' / '.join(aurocs)} | {published:.2f} | {' / '.join(rates)} |"
            )
    return bundles[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=KINECT, help="the kinect-shapes folder")
    parser.add_argument("--models", type=Path, default=ROOT / "models" / "kinect-split-cuda")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "kinect")
    parser.add_argument("--objectives", nargs="+", default=["gan", "wgan-gp"], choices=sorted(OBJECTIVES))
    parser.add_argument("--speed-only", action="store_true", help="train one bundle; only speed and agreement")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("cuda_kinect.py needs a CUDA device")
    roots = block_split(args.data, scratch("kinect-split-cuda"))
    test = {c: [s for _, s in iter_scans(find_scans(roots["test"] / c).refs)] for c in CLASSES}
    report = Report(args.out / ("cuda_speed.md" if args.speed_only else "cuda_benchmark.md"))
    report.add(
        "# Kinect scans on a CUDA GPU\n",
        f"Machine: {machine()}, GPU {torch.cuda.get_device_name()}. Block split as in detect_kinect.py "
        f"({', '.join(f'{c} {len(test[c])}' for c in CLASSES)} test scans); default settings; training "
        "under bf16 autocast on the GPU, detection in float32.\n",
    )
    if args.speed_only:
        first, _ = train_bundle(CLASSES[0], args.objectives[0], roots["train"], args.models, device="cuda")
    else:
        first = quality_rows(args.objectives, roots, test, args.models, report)
    mixed = [s for c in CLASSES for s in test[c]]
    report.add(
        "",
        f"## Speed and agreement: {first.name}, the {len(mixed)} test scans of all classes\n",
        "GPU scans/s timed on 1,024 scans (seed: 64) per batch size; CPU (all cores, batch 64) on the "
        f"{len(mixed)} (seed: every 9th). `max diff` = largest |GPU - CPU| score over the std of the CPU "
        "scores; "
        "`flips` = scans flagged on one device and not the other at the calibrated threshold; last column: "
        "the best GPU batch size against the publication's unbatched seed search on the same GPU.\n",
        "| mode | GPU b64 | GPU b256 | GPU b1024 | CPU b64 | GPU/CPU (b64) | max diff / std | flips | "
        "vs unbatched seed |",
        "|---|---|---|---|---|---|---|---|---|",
    )
    speed_rows(first, mixed, report)


if __name__ == "__main__":
    main()
