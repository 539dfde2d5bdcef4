"""How should scans be framed? Sphere `gan` bundles trained with other crop settings.

    python -m benchmarks.framing_variants [--variants side=40 margin=0.5 margin=0.25,seed=1] [--streams 11 12 13]

The object-centred frame sizes each crop to its object plus a margin (Framing). Two questions:
a crop sized per scan enlarges a small part 4-6 times, so a part of the wrong size looks like the
right one (`side=N`: one crop side for every scan keeps the object's scale); and a crop fitted to a
part with a chunk missing can leave the chunk's pixels outside the box, where the map is empty
(`margin=M`: a wider margin). `seed=S` trains with another seed, to see how far training alone
moves the figures. Each variant trains a sphere `gan` bundle with default settings otherwise on the
training blocks (into /tmp, never over the benchmark bundles), compared with the shipped bundle on
the same validation blocks: held-out good scans, 3 injected copies of each from each evaluation
stream (seed 11 is the validation's; the test tables use 0), and every 4th training scan of the
other classes. Prints injected image AUROC, object-pixel AUROC and TPR at each bundle's threshold
per stream, cross-class AUROC, the share of defect pixels outside the crop box, and per kind image
and object-pixel AUROC over all streams together. Writes reports/kinect/framing_variants.md.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from anomaly_gan.bundle.meta import read_meta
from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.data.defects import DEFECTS
from anomaly_gan.data.framing import Framing, crop, locate
from anomaly_gan.data.scan import Scan
from anomaly_gan.detect.detector import Detector
from anomaly_gan.detect.evaluate import PixelTruth
from anomaly_gan.detect.judge import DetectOptions
from anomaly_gan.report.metrics import pixel_auroc
from benchmarks.protocol import (
    ROOT,
    VALIDATION_SEED,
    Report,
    auroc,
    injected_copies,
    machine,
    other_classes,
    scratch,
    train_bundle,
    validation,
)


@dataclass(frozen=True)
class Variant:
    text: str  # as given: "side=40", "margin=0.5,seed=1"
    framing: Framing
    seed: int

    @classmethod
    def parse(cls, text: str) -> Variant:
        settings = dict(part.partition("=")[::2] for part in text.split(","))
        if not settings.keys() <= {"side", "margin", "seed"}:
            raise argparse.ArgumentTypeError(f"{text!r}: expected side=N, margin=M and/or seed=S, joined by commas")
        framing = Framing(side=int(settings.get("side", 0)), margin=float(settings.get("margin", Framing.margin)))
        return cls(text, framing, int(settings.get("seed", 0)))

    @property
    def folder(self) -> Path:
        return scratch(f"framing-{self.text.replace('=', '').replace(',', '-')}")


def outside_share(scans: list[Scan], framing: Framing) -> float:
    """The share of defect pixels that fall outside their scan's crop box (their map is empty)."""
    total = sum(int(scan.gt.sum()) for scan in scans)
    inside = sum(int(crop(scan, locate(scan, framing)).gt.sum()) for scan in scans)
    return (total - inside) / max(total, 1)


def object_pixel_auroc(normal: PixelTruth, defective: PixelTruth, chosen: np.ndarray) -> float:
    """Over the good scans' object pixels and those of the chosen defective scans."""
    pick = np.flatnonzero(chosen)
    return pixel_auroc(
        normal.masks + [defective.masks[i] for i in pick],
        normal.maps + [defective.maps[i] for i in pick],
        normal.objects + [defective.objects[i] for i in pick],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--variants",
        type=Variant.parse,
        nargs="+",
        default=[Variant.parse(t) for t in ("side=40", "margin=0.5")],
        help="settings to compare with the shipped bundle: side=N (pixels), margin=M, seed=S, joined by commas",
    )
    parser.add_argument(
        "--streams",
        type=int,
        nargs="+",
        default=[VALIDATION_SEED],
        help="seeds of the evaluation defects (3 copies of each good scan per stream)",
    )
    args = parser.parse_args()
    data = validation("sphere", "gan")
    other = other_classes(data, "sphere")
    streams = {seed: injected_copies(data.good, seed=seed, copies=3) for seed in args.streams}
    bad = [s for copies in streams.values() for s in copies]
    stream = np.array([seed for seed, copies in streams.items() for _ in copies])
    kinds = np.array([s.label for s in bad])
    rows = [("per-scan crop, margin 0.25, seed 0 (shipped)", data.bundle)]
    minutes = []
    for variant in args.variants:
        folder, took = train_bundle(
            "sphere", "gan", data.train_root, variant.folder, framing=variant.framing, seed=variant.seed
        )
        assert set(read_meta(folder).training.validation_ids) == {s.id for s in data.good}  # same held-out blocks
        rows.append((variant.text, folder))
        minutes.append(took)
    report = Report(ROOT / "reports" / "kinect" / "framing_variants.md")
    per_stream = ("injected image AUROC", "object-pixel AUROC", "TPR")
    report.add(
        "# Framing variants: sphere `gan`, validation blocks\n",
        f"Machine: {machine()}. Fast mode. {len(data.good)} held-out good scans; per evaluation stream (seeds "
        f"{', '.join(map(str, args.streams))}) 3 injected copies of each; {len(other)} scans of the other "
        f"classes. Variants trained in {', '.join(f'{m:.1f}' for m in minutes)} min.\n",
        "| framing | "
        + " | ".join(f"{name}, stream {seed}" for name in per_stream for seed in args.streams)
        + " | cross-class AUROC | defect pixels outside the crop |",
        "|---" * (3 + len(per_stream) * len(args.streams)) + "|",
    )
    kind_rows = []
    for name, folder in rows:
        detector = Detector(load_bundle(folder), DetectOptions("fast"), torch.device("cpu"))
        good, scored, wrong = detector.score(data.good), detector.score(bad), detector.score(other)
        normal, defective = PixelTruth(), PixelTruth()
        normal(data.good, good)
        defective(bad, scored)
        cells = [auroc(good.scores, scored.scores[stream == s]) for s in args.streams]
        cells += [object_pixel_auroc(normal, defective, stream == s) for s in args.streams]
        cells += [float(np.mean(scored.anomalous[stream == s])) for s in args.streams]
        cells += [auroc(good.scores, wrong.scores), outside_share(bad, detector.bundle.meta.framing)]
        report.add(f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
        kind_cells = [
            (auroc(good.scores, scored.scores[kinds == k]), object_pixel_auroc(normal, defective, kinds == k))
            for k in DEFECTS
        ]
        kind_rows.append(f"| {name} | " + " | ".join(f"{a:.3f} / {p:.3f}" for a, p in kind_cells) + " |")
    report.add(
        "\nPer kind, all streams together: image AUROC / object-pixel AUROC\n",
        "| framing | " + " | ".join(DEFECTS) + " |",
        "|---" * (1 + len(DEFECTS)) + "|",
        *kind_rows,
    )


if __name__ == "__main__":
    main()
