"""How many random restarts and Adam steps `refine` needs: cross-class AUROC against scans/s.

    python -m benchmarks.refine_restarts

For each Kinect block-split bundle in models/kinect-split (detect_kinect.py trains them), scores the
bundle's own validation blocks (good) against every 3rd training scan of the other two classes,
with refine at several (random restarts besides E(x), steps) settings and with fast mode. No test
scan is used, so the default can be chosen from this table. Scores combine with the bundle's own
refine calibration. Writes reports/kinect/refine_restarts.md.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import torch

from anomaly_gan.bundle.meta import read_meta
from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.detect.detector import Detector
from anomaly_gan.detect.judge import DetectOptions
from anomaly_gan.fsutil import atomic_write_text
from benchmarks.protocol import (
    CLASSES,
    KINECT,
    MODELS,
    ROOT,
    SPLIT,
    auroc,
    block_split,
    machine,
    other_classes,
    validation_of,
)

SETTINGS = ((4, 20), (1, 20), (0, 20), (0, 5), (0, 40))  # (random restarts, steps)


def cross_class(detector: Detector, good: list, others: list) -> tuple[float, float]:
    """AUROC of good vs other-class scans, and scans/s over both."""
    started = time.perf_counter()
    scores = [detector.score(s).scores for s in (good, others)]
    return auroc(*scores), (len(good) + len(others)) / (time.perf_counter() - started)


def main() -> None:
    roots = block_split(KINECT, SPLIT)
    header = " | ".join(f"r{r} s{s}" for r, s in SETTINGS)
    lines = [
        "# Refine: random restarts and steps (validation side)\n",
        f"Machine: {machine()}. Each bundle's validation blocks (good) vs every 4th training scan of the "
        "other classes (the shared validation protocol); cell = cross-class AUROC (scans/s). r = random "
        "restarts besides E(x), s = Adam steps.\n",
        f"| bundle | fast | {header} |",
        "|---|---|" + "---|" * len(SETTINGS),
    ]
    print("\n".join(lines), flush=True)
    means = np.zeros(len(SETTINGS) + 1)
    bundles = [MODELS / f"{c}-{o}" for o in ("gan", "wgan-gp") for c in CLASSES]
    for bundle in bundles:
        cls = bundle.name.split("-")[0]
        meta = read_meta(bundle)
        data = validation_of(bundle, cls, roots["train"])
        good, others = data.good, other_classes(data, cls)
        cells = [cross_class(Detector(load_bundle(bundle), DetectOptions("fast"), torch.device("cpu")), good, others)]
        for restarts, steps in SETTINGS:
            options = DetectOptions("refine", invert=replace(meta.invert, restarts=restarts, steps=steps))
            detector = Detector(load_bundle(bundle), options, torch.device("cpu"))
            cells.append(cross_class(detector, good, others))
        means += [a for a, _ in cells]
        row = f"| {bundle.name} | " + " | ".join(f"{a:.3f} ({r:.1f}/s)" for a, r in cells) + " |"
        print(row, flush=True)
        lines.append(row)
    lines.append("| mean | " + " | ".join(f"{m / len(bundles):.3f}" for m in means) + " |")
    print(lines[-1])
    atomic_write_text(ROOT / "reports" / "kinect" / "refine_restarts.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
