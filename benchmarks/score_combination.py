"""Would a second, scan-level sum in the score help? Measured on validation blocks; not kept.

    python -m benchmarks.score_combination [--bundles sphere-gan cylinder-gan ...]

The score is one sum of standardised components with weights fitted on simulated local defects,
so mostly the head. The idea tried here: a second sum of the scan-level components (colour, depth,
feature, critic, search; equal weights) that would catch a part unlike the good ones as a whole,
both sums scaled to unit spread on the held-out good scans, the score the larger of the two or the
fitted sum plus a share of the second. For each benchmark bundle (fast mode): its held-out good
validation scans, 3 copies of each with one evaluation defect (a random stream the test tables do
not use), and every 4th scan of the other classes' training blocks; prints injected-defect and
cross-class image AUROC per combination. Writes reports/kinect/score_combination.md.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from anomaly_gan.bundle.calibration import Calibration, total
from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.detect.detector import DetectOptions, Detector
from benchmarks.protocol import ROOT, Report, auroc, machine, other_classes, validation

SHARES = (0.5, 1.0)
SCAN_LEVEL = ("colour", "depth", "feature", "critic", "search")


def sums(calibration: Calibration, values: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The bundle's score (the fitted sum) and the scan-level sum, standardised with the same
    good-scan statistics: both have mean 0 on the held-out good scans."""
    scan_level = Calibration(calibration.mean, calibration.std, {k: 1.0 for k in SCAN_LEVEL if k in values})
    return calibration.combine(values), total(scan_level.contributions(values))


def cell(pick, good, bad, other) -> str:
    """Injected-defect / cross-class AUROC of one way of combining the two sums."""
    return f"{auroc(pick(good), pick(bad)):.3f} / {auroc(pick(good), pick(other)):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bundles", nargs="+", default=["sphere-gan", "cylinder-gan", "rectangle-gan", "sphere-wgan-gp"]
    )
    args = parser.parse_args()
    report = Report(ROOT / "reports" / "kinect" / "score_combination.md")
    shares = " | ".join(f"fitted + {s} x scan-level" for s in SHARES)
    report.add(
        "# Score combination: validation blocks\n",
        f"Machine: {machine()}. Fast mode. Per bundle: its held-out good validation scans, 3 copies of each "
        "with one evaluation defect (seed 11), every 4th scan of the other classes' training blocks. Each "
        "cell: injected-defect image AUROC / cross-class image AUROC.\n",
        f"| bundle | fitted sum (shipped) | scan-level sum | larger of the two | {shares} |",
        "|---" * (4 + len(SHARES)) + "|",
    )
    for name in args.bundles:
        shape, objective = name.split("-", 1)
        data = validation(shape, objective)
        detector = Detector(load_bundle(data.bundle), DetectOptions("fast"), torch.device("cpu"))
        others = other_classes(data, shape)
        good, bad, other = (
            sums(detector.calibration, detector.score(scans).scored.values) for scans in (data.good, data.bad, others)
        )
        spreads = np.std(good[0]), np.std(good[1])  # each sum to unit spread on the held-out good scans
        sets = [(fitted / spreads[0], scan_level / spreads[1]) for fitted, scan_level in (good, bad, other)]
        picks = [lambda p: p[0], lambda p: p[1], lambda p: np.maximum(*p)]
        picks += [lambda p, s=s: p[0] + s * p[1] for s in SHARES]
        report.add(f"| {name} | " + " | ".join(cell(pick, *sets) for pick in picks) + " |")


if __name__ == "__main__":
    main()
