"""Which head setting to ship, decided on validation blocks (never the test blocks).

    python -m benchmarks.head_variants [--shape sphere] [--objective gan] [--steps 600 1200] [--seeds 0 1 2]

The bundle's GAN and encoder stay frozen; for each head length and seed a head is trained with the
current head settings, recalibrated in fast mode, and scored on the bundle's held-out validation
scans and 3 copies of each with one evaluation defect (data/defects.py, a random stream the test
table does not use). Prints image AUROC of the score, of the head component alone, of other
aggregations of the head's map, and per kind; object-pixel AUROC of the head's map; TPR at the
recalibrated threshold; the head component's median on held-out good scans and on the scans the
GAN trained on (a head that memorised its training scans shows a gap). Writes reports/kinect/head_variants_<bundle>.md.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import torch

from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.data.defects import DEFECTS
from anomaly_gan.detect.detector import Detector
from anomaly_gan.detect.evaluate import PixelTruth
from anomaly_gan.detect.judge import DetectOptions
from anomaly_gan.train.config import TrainConfig
from anomaly_gan.train.refresh import retrain_head
from benchmarks.protocol import ROOT, VALIDATION_SEED, Report, auroc, machine, validation


def top_mean(maps: np.ndarray, k: int) -> np.ndarray:
    flat = maps.reshape(len(maps), -1)
    return np.sort(flat, axis=1)[:, -k:].mean(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="sphere")
    parser.add_argument("--objective", default="gan")
    parser.add_argument("--steps", type=int, nargs="+", default=[600, 1200])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    data = validation(args.shape, args.objective)
    folder, good, bad = data.bundle, data.good, data.bad
    kinds = np.array([s.label for s in bad])
    config = TrainConfig(name=args.shape, objective=args.objective, data=data.train_root)
    report = Report(ROOT / "reports" / "kinect" / f"head_variants_{folder.name}.md")
    report.add(
        f"# Head variants: {folder.name}, validation blocks\n",
        f"Machine: {machine()}. Fast mode. {len(good)} held-out good validation scans and {len(bad)} "
        f"injected copies (evaluation defects, seed {VALIDATION_SEED}). Image AUROC.\n",
        "| head steps | seed | head minutes | score | head component | top-4 | top-64 | map max | TPR | "
        "object-pixel | head median, good held-out / trained-on | " + " | ".join(DEFECTS) + " |",
        "|---" * (11 + len(DEFECTS)) + "|",
    )
    trained_on = data.trained_on[::4]
    for steps in args.steps:
        for seed in args.seeds:
            variant = retrain_head(load_bundle(folder), replace(config, head_steps=steps, seed=seed))
            minutes = variant.meta.training.head_seconds / 60
            detector = Detector(variant, DetectOptions("fast"), torch.device("cpu"))
            g, b, t = detector.score(good), detector.score(bad), detector.score(trained_on)
            gm, bm = g.scored.maps[:, 0], b.scored.maps[:, 0]
            truth = PixelTruth()
            truth(good, g)
            truth(bad, b)
            cells = [
                auroc(g.scores, b.scores),
                auroc(g.scored.values["head"], b.scored.values["head"]),
                auroc(top_mean(gm, 4), top_mean(bm, 4)),
                auroc(top_mean(gm, 64), top_mean(bm, 64)),
                auroc(top_mean(gm, 1), top_mean(bm, 1)),
                float(np.mean(b.anomalous)),
                truth.metrics()["object_pixel_auroc"],
            ]
            medians = f"{np.median(g.scored.values['head']):.3f} / {np.median(t.scored.values['head']):.3f}"
            kind_cells = [auroc(g.scores, b.scores[kinds == k]) for k in DEFECTS]
            report.add(
                f"| {steps} | {seed} | {minutes:.1f} | "
                + " | ".join(f"{c:.3f}" for c in cells)
                + f" | {medians} | "
                + " | ".join(f"{c:.3f}" for c in kind_cells)
                + " |"
            )


if __name__ == "__main__":
    main()
