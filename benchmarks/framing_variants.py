"""How should scans be framed? Sphere `gan` bundles trained with other crop settings.

    python -m benchmarks.framing_variants [--variants side=40 margin=0.5]

The object-centred frame sizes each crop to its object plus a margin (Framing). Two questions:
a crop sized per scan enlarges a small part 4-6 times, so a part of the wrong size looks like the
right one (`side=N`: one crop side for every scan keeps the object's scale); and a crop fitted to a
part with a chunk missing can leave the chunk's pixels outside the box, where the map is empty
(`margin=M`: a wider margin). Each variant trains a sphere `gan` bundle with default settings
otherwise on the training blocks (into /tmp, never over the benchmark bundles), compared with the
shipped bundle on the same validation blocks: held-out good scans, 3 injected copies of each
(evaluation stream, seed 11), and every 4th training scan of the other classes. Prints injected
image AUROC (all and per kind), cross-class AUROC, object-pixel AUROC (all and per kind), the share
of defect pixels outside the crop box and TPR at each bundle's threshold. Writes
reports/kinect/framing_variants.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from anomaly_gan.bundle.meta import read_meta
from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.data.defects import DEFECTS
from anomaly_gan.data.framing import Framing, locate
from anomaly_gan.data.scan import Scan
from anomaly_gan.detect.detector import DetectOptions, Detector
from anomaly_gan.detect.evaluate import PixelTruth
from anomaly_gan.report.metrics import pixel_auroc
from benchmarks.kinect import Report, auroc, machine, other_classes, train_bundle, validation

ROOT = Path(__file__).resolve().parents[1]


def variant(text: str) -> Framing:
    """'side=40' or 'margin=0.5' -> that change to the default framing."""
    name, _, value = text.partition("=")
    if name == "side":
        return Framing(side=int(value))
    if name == "margin":
        return Framing(margin=float(value))
    raise argparse.ArgumentTypeError(f"{text!r}: expected side=N or margin=M")


def outside_share(scans: list[Scan], framing: Framing) -> float:
    """The share of defect pixels that fall outside their scan's crop box (their map is empty)."""
    total = outside = 0
    for scan in scans:
        box = locate(scan, framing)
        inside = np.zeros(scan.shape, bool)
        inside[max(box.top, 0):box.top + box.side, max(box.left, 0):box.left + box.side] = True
        total += scan.gt.sum()
        outside += (scan.gt & ~inside).sum()
    return outside / max(total, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=variant, nargs="+", default=[variant("side=40"), variant("margin=0.5")],
                        help="framings to compare with the shipped one: side=N (pixels) or margin=M")
    args = parser.parse_args()
    data = validation("sphere", "gan")
    other = other_classes(data, "sphere")
    kinds = np.array([s.label for s in data.bad])
    rows = [("per-scan crop, margin 0.25 (shipped)", data.bundle, None)]
    for framing in args.variants:
        folder, minutes = train_bundle("sphere", "gan", data.train_root, Path(f"/tmp/anomaly-gan-framing-"
                                       f"{f'side{framing.side}' if framing.side else f'margin{framing.margin}'}"),
                                       framing=framing)
        assert set(read_meta(folder).training.validation_ids) == {s.id for s in data.good}  # same held-out blocks
        rows.append((f"fixed side {framing.side} px" if framing.side else f"margin {framing.margin}", folder, minutes))
    report = Report(ROOT / "reports" / "kinect" / "framing_variants.md")
    report.add("# Framing variants: sphere `gan`, validation blocks\n",
               f"Machine: {machine()}. Fast mode. {len(data.good)} held-out good scans, {len(data.bad)} injected"
               f" copies, {len(other)} scans of the other classes. Variants trained in "
               + ", ".join(f"{m:.1f}" for *_, m in rows[1:]) + " min.\n",
               "| framing | injected image AUROC | cross-class AUROC | object-pixel AUROC | defect pixels outside the"
               " crop | TPR | " + " | ".join(DEFECTS) + " |", "|---" * (6 + len(DEFECTS)) + "|")
    pixel_rows = []
    for name, bundle, _ in rows:
        detector = Detector(load_bundle(bundle), DetectOptions("fast"), torch.device("cpu"))
        framing = detector.bundle.meta.framing
        good, bad, wrong = detector.score(data.good), detector.score(data.bad), detector.score(other)
        normal, defective = PixelTruth(), PixelTruth()
        normal(data.good, good)
        defective(data.bad, bad)
        cells = [auroc(good.scores, bad.scores), auroc(good.scores, wrong.scores),
                 object_pixel_auroc(normal, defective, np.ones(len(kinds), bool)), outside_share(data.bad, framing),
                 float(np.mean(bad.anomalous))]
        cells += [auroc(good.scores, bad.scores[kinds == k]) for k in DEFECTS]
        report.add(f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
        pixel_rows.append(f"| {name} | " + " | ".join(
            f"{object_pixel_auroc(normal, defective, kinds == k):.3f}" for k in DEFECTS) + " |")
    report.add("\nObject-pixel AUROC per kind (held-out good scans and the copies of that kind):\n",
               "| framing | " + " | ".join(DEFECTS) + " |", "|---" * (1 + len(DEFECTS)) + "|", *pixel_rows)


def object_pixel_auroc(normal: PixelTruth, defective: PixelTruth, chosen: np.ndarray) -> float:
    """Over the good scans' object pixels and those of the chosen defective scans."""
    pick = np.flatnonzero(chosen)
    return pixel_auroc(normal.masks + [defective.masks[i] for i in pick],
                       normal.maps + [defective.maps[i] for i in pick],
                       normal.objects + [defective.objects[i] for i in pick])


if __name__ == "__main__":
    main()
