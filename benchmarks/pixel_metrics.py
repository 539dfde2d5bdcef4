"""Pixel metrics at capture size: evaluate's pixel AUROC and AU-PRO, seconds and memory, against scikit-learn.

    python -m benchmarks pixel_metrics [--scans 112] [--width 800] [--height 600] [--no-reference]

`evaluate` keeps every scan's map at the scan's own size and pools the pixels: 112 colour captures of
800x600 are 54 million pixels, pooled twice (the frame, the object). Synthetic maps stand in for a
bundle's: per scan an object (an ellipse over half the frame), a smooth noise map brighter on the
object, and on every other scan one defect blob of about 30x30 pixels that the map shows (with a
third of them faint). Timed: the four figures evaluate reports (pixel AUROC and AU-PRO over the
frame and over the object), then scikit-learn's roc_auc_score on the same pixels as the reference
for the two AUROCs (what evaluate called before; the AU-PRO it replaced set a threshold at every
defect-pixel value and is not kept). Peak memory above the maps by tracemalloc (numpy reports its
buffers to it). Writes reports/pixel_metrics.md.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable

import cv2
import numpy as np
from sklearn.metrics import roc_auc_score

from anomaly_gan.report.metrics import au_pro, pixel_auroc
from benchmarks.protocol import ROOT, Report, machine


def synthetic_maps(scans: int, width: int, height: int, seed: int = 0):
    """Masks, maps and object regions of `scans` captures, every other one with a defect."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    obj = ((x - width / 2) / (0.4 * width)) ** 2 + ((y - height / 2) / (0.4 * height)) ** 2 < 1
    masks, maps, objects = [], [], []
    for i in range(scans):
        noise = cv2.GaussianBlur(rng.standard_normal((height, width)).astype(np.float32), (0, 0), 3)
        amap = 2.0 * noise + 0.3 * obj  # noise of about 0.2 after the blur: faint defects overlap it
        mask = np.zeros((height, width), bool)
        if i % 2:
            cy, cx = rng.integers(height // 3, 2 * height // 3), rng.integers(width // 3, 2 * width // 3)
            mask = (y - cy) ** 2 / rng.uniform(100, 300) + (x - cx) ** 2 / rng.uniform(100, 300) < 1
            amap = amap + (0.1 if i % 3 == 0 else 0.5) * mask
        masks.append(mask)
        maps.append(amap.astype(np.float32))
        objects.append(obj | mask)
    return masks, maps, objects


def timed(work: Callable[[], dict]) -> tuple[dict, float, float]:
    """What `work` returns, its seconds and its peak memory in MB above what was allocated before."""
    tracemalloc.start()
    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return result, seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=112)
    parser.add_argument("--width", type=int, default=800)
    parser.add_argument("--height", type=int, default=600)
    parser.add_argument("--no-reference", action="store_true", help="skip scikit-learn (minutes at 800x600)")
    args = parser.parse_args()
    masks, maps, objects = synthetic_maps(args.scans, args.width, args.height)
    pixels = args.scans * args.width * args.height

    def ours() -> dict:
        return {
            "pixel AUROC": pixel_auroc(masks, maps),
            "AU-PRO 0.3": au_pro(masks, maps),
            "object pixel AUROC": pixel_auroc(masks, maps, objects),
            "object AU-PRO 0.3": au_pro(masks, maps, within=objects),
        }

    def reference() -> dict:
        truth, scores = np.concatenate([m.ravel() for m in masks]), np.concatenate([m.ravel() for m in maps])
        inside = np.concatenate([o.ravel() for o in objects])
        return {
            "pixel AUROC": roc_auc_score(truth, scores.astype(float)),
            "object pixel AUROC": roc_auc_score(truth[inside], scores[inside].astype(float)),
        }

    report = Report(ROOT / "reports" / "pixel_metrics.md")
    report.add(
        "# Pixel metrics at capture size\n",
        f"Machine: {machine()}. {args.scans} synthetic maps of {args.width}x{args.height} ({pixels / 1e6:.0f} million "
        "pixels, pooled over the frame and over the object); `python -m benchmarks pixel_metrics "
        f"--scans {args.scans} --width {args.width} --height {args.height}`.\n",
        "| what | seconds | peak MB above the maps | pixel AUROC | AU-PRO 0.3 | object pixel AUROC "
        "| object AU-PRO 0.3 |",
        "|---|---|---|---|---|---|---|",
    )
    runs = {"evaluate's metrics (all four)": ours}
    if not args.no_reference:
        runs["scikit-learn roc_auc_score (the two AUROCs)"] = reference
    for name, work in runs.items():
        figures, seconds, peak = timed(work)
        cells = [figures.get(k) for k in ("pixel AUROC", "AU-PRO 0.3", "object pixel AUROC", "object AU-PRO 0.3")]
        report.add(
            f"| {name} | {seconds:.1f} | {peak:.0f} | "
            + " | ".join("" if c is None else f"{c:.6f}" for c in cells)
            + " |"
        )
    report.add("")


if __name__ == "__main__":
    main()
