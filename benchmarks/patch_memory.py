"""Would a memory bank of patch features help? Decided on validation blocks (never the test blocks).

    python -m benchmarks.patch_memory [--shape sphere] [--objective gan]

PatchCore's idea on our own networks: the critic's or encoder's intermediate feature maps of the
bundle's training scans (3x3 average-pooled, 20,000 patch vectors drawn at random as the memory),
and for a scan the distance of each of its patches to the nearest one in memory, aggregated by the
maximum or the mean of the 4 largest. Scored on the bundle's held-out validation scans and 3 copies
of each with one evaluation defect (data/defects.py, a random stream the test table does not use);
"with score" adds the component, standardised on the good scans, to the bundle's own score.
Writes reports/kinect/patch_memory_<bundle>.md.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.data.defects import DEFECTS
from anomaly_gan.data.scan import Scan
from anomaly_gan.detect.detector import Detector
from anomaly_gan.detect.judge import DetectOptions
from benchmarks.protocol import ROOT, VALIDATION_SEED, Report, auroc, machine, validation

MEMORY = 20_000
TAPS = {"32x32": 1, "16x16": 4}  # layer of the trunk after which features are taken (64-pixel networks)


def patch_features(detector: Detector, net: torch.nn.Module, scans: list[Scan], tap: int) -> tuple[torch.Tensor, int]:
    """(N * s * s, C) pooled patch features after trunk layer `tap`, and the side s."""
    x, _ = detector.tensor(scans)
    h = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        for i, layer in enumerate(net.trunk.net.children()):
            h = layer(h)
            if i == tap:
                break
        h = F.avg_pool2d(h, 3, 1, 1)
    return h.permute(0, 2, 3, 1).reshape(-1, h.shape[1]), h.shape[-1]


def nearest(queries: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    return torch.cat([torch.cdist(queries[i : i + 2048], memory).min(1).values for i in range(0, len(queries), 2048)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="sphere")
    parser.add_argument("--objective", default="gan")
    args = parser.parse_args()
    data = validation(args.shape, args.objective)
    folder, good, bad, train = data.bundle, data.good, data.bad, data.trained_on
    bundle = load_bundle(folder)
    kinds = np.array([s.label for s in bad])
    detector = Detector(bundle, DetectOptions("fast"), torch.device("cpu"))
    g, b = detector.score(good), detector.score(bad)
    report = Report(ROOT / "reports" / "kinect" / f"patch_memory_{folder.name}.md")
    report.add(
        f"# Patch-feature memory bank: {folder.name}, validation blocks\n",
        f"Machine: {machine()}. Fast mode. {len(good)} held-out good validation scans and {len(bad)} injected "
        f"copies (evaluation defects, seed {VALIDATION_SEED}); memory: {MEMORY} patches of the "
        f"{len(train)} training scans. Image AUROC. The bundle's own score: {auroc(g.scores, b.scores):.3f}.\n",
        "| features | aggregation | component alone | with score | " + " | ".join(DEFECTS) + " |",
        "|---" * (4 + len(DEFECTS)) + "|",
    )
    z = (g.scores.mean(), g.scores.std())
    for name in ("critic", "encoder"):
        net = getattr(bundle, name)
        for size, tap in TAPS.items():
            memory, _ = patch_features(detector, net, train, tap)
            memory = memory[torch.randperm(len(memory), generator=torch.Generator().manual_seed(0))[:MEMORY]]
            distances = []
            for group in (good, bad):
                queries, side = patch_features(detector, net, group, tap)
                distances.append(nearest(queries, memory).reshape(len(group), side * side))
            for aggregation, k in (("max", 1), ("top-4 mean", 4)):
                pg, pb = (d.topk(k, 1).values.mean(1).numpy() for d in distances)
                with_score = auroc(
                    (pg - pg.mean()) / pg.std() + (g.scores - z[0]) / z[1],
                    (pb - pg.mean()) / pg.std() + (b.scores - z[0]) / z[1],
                )
                cells = [auroc(pg, pb), with_score] + [auroc(pg, pb[kinds == k]) for k in DEFECTS]
                report.add(f"| {name} {size} | {aggregation} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")


if __name__ == "__main__":
    main()
