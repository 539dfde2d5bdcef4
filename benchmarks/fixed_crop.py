"""Does keeping the object's scale help? A bundle trained with one crop size for every scan.

    python -m benchmarks.fixed_crop [--side 40]

The object-centred frame sizes each crop to its object, so every part fills the network frame the
same way: a small part is enlarged 4-6 times, and a part of the wrong size looks like the right
one. This trains a sphere `gan` bundle with default settings except a fixed crop side (centred on
the object, Framing.side) on the training blocks (into /tmp, never over the benchmark bundles), and
compares it with the shipped bundle on the same validation blocks: held-out good scans, 3 injected
copies of each (evaluation stream, seed 11), and every 4th training scan of the other classes.
Prints injected image AUROC (all and per kind), cross-class AUROC, object-pixel AUROC and TPR at
each bundle's threshold. Writes reports/kinect/fixed_crop.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from anomaly_gan.bundle.meta import read_meta
from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.data.defects import DEFECTS
from anomaly_gan.data.framing import Framing
from anomaly_gan.detect.detector import DetectOptions, Detector
from anomaly_gan.detect.evaluate import PixelTruth
from benchmarks.kinect import Report, auroc, machine, other_classes, train_bundle, validation

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=40, help="crop side in scan pixels (Kinect spheres: median 28)")
    args = parser.parse_args()
    data = validation("sphere", "gan")
    folder, minutes = train_bundle("sphere", "gan", data.train_root, Path(f"/tmp/anomaly-gan-fixed-crop-{args.side}"),
                                   framing=Framing("object", side=args.side))
    assert set(read_meta(folder).training.validation_ids) == {s.id for s in data.good}  # same held-out blocks
    other = other_classes(data, "sphere")
    kinds = np.array([s.label for s in data.bad])
    report = Report(ROOT / "reports" / "kinect" / "fixed_crop.md")
    report.add("# Fixed crop size: sphere `gan`, validation blocks\n",
               f"Machine: {machine()}. Fast mode. {len(data.good)} held-out good scans, {len(data.bad)} injected"
               f" copies, {len(other)} scans of the other classes. Fixed-crop bundle: trained in {minutes:.1f} min.\n",
               "| framing | injected image AUROC | cross-class AUROC | object-pixel AUROC | TPR | "
               + " | ".join(DEFECTS) + " |", "|---" * (5 + len(DEFECTS)) + "|")
    for name, bundle in (("per-scan crop (shipped)", data.bundle), (f"fixed {args.side} px", folder)):
        detector = Detector(load_bundle(bundle), DetectOptions("fast"), torch.device("cpu"))
        good, bad, wrong = detector.score(data.good), detector.score(data.bad), detector.score(other)
        truth = PixelTruth()
        truth(data.good, good)
        truth(data.bad, bad)
        cells = [auroc(good.scores, bad.scores), auroc(good.scores, wrong.scores),
                 truth.metrics()["object_pixel_auroc"], float(np.mean(bad.anomalous))]
        cells += [auroc(good.scores, bad.scores[kinds == k]) for k in DEFECTS]
        report.add(f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")


if __name__ == "__main__":
    main()
