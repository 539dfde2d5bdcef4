"""Synthetic scans beside real Kinect scans: a montage to look at, value ranges, and synth speed.

python -m benchmarks.synth_vs_real     # writes reports/synth_vs_real.png, prints a table
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from anomaly_gan.data.layouts import find_scans, iter_scans
from anomaly_gan.data.synth import render_scan, scan_rng
from anomaly_gan.data.synth_sets import synthesise
from anomaly_gan.data.tensor import DepthScale, scan_to_array
from anomaly_gan.report.images import grid, save_rgb, scan_tile, upscale
from benchmarks.protocol import CLASSES, KINECT, ROOT, machine


def stats(scans: list) -> str:
    depth = np.concatenate([s.depth[s.valid] for s in scans])
    area = np.mean([s.valid.mean() for s in scans])
    colour = np.concatenate([s.rgb[s.valid] for s in scans]).mean()
    p1, p50, p99 = np.percentile(depth, [1, 50, 99])
    return f"{area:6.1%} | {p1:5.0f} {p50:5.0f} {p99:5.0f} | {colour:5.0f}"


def main() -> None:
    print(f"machine: {machine()}\n")
    print("| class | source | object area | 8-bit depth p1 p50 p99 | mean colour on object |")
    print("|---|---|---|---|---|")
    rows = []
    for cls in CLASSES:
        real = [s for _, s in iter_scans(find_scans(KINECT / cls).refs[::15])]
        synth = [render_scan(cls, scan_rng(0, cls, i), str(i)) for i in range(len(real))]
        print(f"| {cls} | real | {stats(real)} |\n| {cls} | synthetic | {stats(synth)} |")
        scale = DepthScale.fit(real + synth)
        rows.append([scan_tile(scan_to_array(s, scale)) for s in synth[:6]])
        rows.append([scan_tile(scan_to_array(s, scale)) for s in real[:6]])
    sheet = upscale(grid([t for row in rows for t in row], columns=6), 2)
    save_rgb(ROOT / "reports" / "synth_vs_real.png", sheet)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        count = sum(1 for _ in synthesise(Path(tmp) / "sphere", "sphere", 600, seed=0, defect_rate=0.3))
        rate = count / (time.perf_counter() - started)
    print(f"\nsynth: {count} scans rendered and written (30% with defects) at {rate:.0f} scans/s")
    print("montage: reports/synth_vs_real.png (per class: a synthetic row, then a real row)")


if __name__ == "__main__":
    main()
