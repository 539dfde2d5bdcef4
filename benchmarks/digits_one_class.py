"""One-class digits: learn one handwritten digit, tell it from the other nine.

    python -m benchmarks.digits_one_class [--digits 0 1 ...] [--steps 600] [--size 32] [--out DIR]

Data: scikit-learn's 1,797 digits (shipped with the package), written by `synth --shape digits` as
grayscale image folders (8x8 upsampled to --size). Each digit's images are split by blocks of 10
consecutive images (consecutive images share writers): every 4th block is test, the rest train
(and `train` itself holds out validation blocks from those for calibration). For each digit a
colour-only (rgb, grayscale) bundle is trained with --steps GAN steps (half as many encoder and
head steps), then scored in fast mode on the digit's test blocks (normal) and on every other
digit's test blocks (anomalous). Writes digits_one_class.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.data.digits import DIGITS, write_digits
from anomaly_gan.data.layouts import find_scans, iter_scans
from anomaly_gan.detect.detector import Detector
from anomaly_gan.detect.judge import DetectOptions
from anomaly_gan.train.config import TrainConfig
from anomaly_gan.train.run import train
from benchmarks.protocol import ROOT, Report, auroc, block_split, machine, scratch, timed_score

WORK = scratch("digits")
BLOCK, TEST_EVERY = 10, 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--digits", nargs="+", default=list(DIGITS))
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--out", type=Path, default=ROOT / "reports")
    args = parser.parse_args()
    source = WORK / f"digits-{args.size}"
    if not source.is_dir():
        list(write_digits(source, args.size))
    roots = block_split(source, WORK, BLOCK, TEST_EVERY, DIGITS)
    test = {d: [s for _, s in iter_scans(find_scans(roots["test"] / d).refs)] for d in DIGITS}
    report = Report(args.out / "digits_one_class.md")
    report.add(
        "# One-class digits (scikit-learn's handwritten digits)",
        "",
        f"Machine: {machine()}, CPU only. Images upsampled 8x8 -> {args.size}x{args.size}, grayscale, "
        f"colour-only (rgb) bundles, objective gan, {args.steps} GAN steps, {args.steps // 2} encoder and "
        f"head steps. Split: blocks of {BLOCK} consecutive images, every {TEST_EVERY}th block test. "
        "Normal: the digit's test blocks; anomalous: every other digit's test blocks. Fast mode.",
        "",
        "| digit | train images | test normal | test other digits | AUROC | TPR at calibrated threshold "
        "| FPR | train min | scans/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    )
    results = []
    for digit in args.digits:
        started = time.perf_counter()
        config = TrainConfig(
            name=digit,
            data=roots["train"],
            out=WORK / "models",
            image_size=args.size,
            steps=args.steps,
            encoder_steps=args.steps // 2,
            head_steps=args.steps // 2,
            val_block=BLOCK,
            device="cpu",
        )
        bundle = load_bundle(train(config, lambda *a: None, force=True).path)
        minutes = (time.perf_counter() - started) / 60
        detector = Detector(bundle, DetectOptions("fast"), torch.device("cpu"))
        others = [s for d in DIGITS if d != digit for s in test[d]]
        normal, rate = timed_score(detector, test[digit])
        anomalous, _ = timed_score(detector, others)
        value = auroc(normal.scores, anomalous.scores)
        results.append(value)
        report.add(
            f"| {digit} | {bundle.meta.training.train_scans + bundle.meta.training.validation_scans} | "
            f"{len(test[digit])} | {len(others)} | {value:.3f} | {anomalous.anomalous.mean():.2f} | "
            f"{normal.anomalous.mean():.2f} | {minutes:.1f} | {rate:.0f} |"
        )
    report.add("", f"Mean AUROC over {len(results)} digits: {sum(results) / len(results):.3f}.")


if __name__ == "__main__":
    main()
