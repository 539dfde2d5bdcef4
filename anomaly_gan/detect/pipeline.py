"""`detect` end to end: stream scans in batches, score them against one or more bundles, write
records, panels and maps as it goes (results survive an interrupt)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anomaly_gan.data.layouts import ScanRef, iter_scans
from anomaly_gan.data.scan import Scan, ScanError
from anomaly_gan.detect.detector import Detector
from anomaly_gan.detect.score import COMPONENTS
from anomaly_gan.fsutil import atomic_save_npy, atomic_write_json, atomic_write_text
from anomaly_gan.report.images import colour_image, depth_image, heat_overlay, save_rgb, upscale

RECORD_FIELDS = ("scan", "id", "label", "class", "model", "mode", "score", "threshold", "anomalous",
                 *COMPONENTS, "map", "map_npy")


@dataclass
class DetectRun:
    out: Path
    records: list[dict] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    @property
    def anomalous(self) -> int:
        return sum(r["anomalous"] for r in self.records)


def batches(refs: list[ScanRef], size: int, run: DetectRun) -> Iterator[list[Scan]]:
    """Load scans lazily in batches; unreadable ones are recorded and skipped."""
    batch: list[Scan] = []
    for _, scan in iter_scans(refs):
        if isinstance(scan, ScanError):
            run.unreadable.append(str(scan))
            continue
        batch.append(scan)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _panel(x: np.ndarray, recon: np.ndarray, amap: np.ndarray, scale: float) -> np.ndarray:
    """colour | depth | reconstructed colour | reconstructed depth | anomaly overlay."""
    rgb = colour_image(x)
    tiles = [rgb, depth_image(x), colour_image(recon), depth_image(recon), heat_overlay(rgb, amap, scale)]
    return upscale(np.hstack(tiles), 3)


def _unique_name(scan: Scan, used: set[str]) -> str:
    base = f"{scan.label}_{scan.id}" if scan.label != "good" else scan.id
    name, k = base, 1
    while name in used:
        k += 1
        name = f"{base}_{k}"
    used.add(name)
    return name


def detect(refs: list[ScanRef], detectors: list[Detector], run: DetectRun, save_maps: bool,
           on_batch: Callable[[int], None] = lambda n: None) -> DetectRun:
    """Score every readable scan; with several detectors, pick the best-matching class per scan."""
    used: set[str] = set()
    size = detectors[0].options.batch_size
    for chunk, scans in enumerate(batches(refs, size, run)):
        results = [d.score(scans, chunk) for d in detectors]
        # Best match: the bundle for which the scan sits lowest relative to its threshold.
        margins = np.stack([scores - d.threshold for d, (_, _, scores) in zip(detectors, results, strict=True)])
        best = margins.argmin(axis=0)
        for i, scan in enumerate(scans):
            detector = detectors[best[i]]
            x, scored, scores = results[best[i]]
            name = _unique_name(scan, used)
            map_path = run.out / "maps" / f"{name}.png"
            save_rgb(map_path, _panel(x[i].numpy(), scored.recon[i], scored.maps[i], detector.map_scale))
            npy = None
            if save_maps:
                npy = run.out / "maps" / f"{name}.npy"
                atomic_save_npy(npy, scored.maps[i].astype(np.float32))
            record = {
                "scan": str(scan.source), "id": scan.id, "label": scan.label,
                "class": detector.bundle.meta["name"], "model": str(detector.bundle.path),
                "mode": detector.options.mode, "score": float(scores[i]),
                "threshold": float(detector.threshold), "anomalous": bool(scores[i] >= detector.threshold),
                **{k: float(scored.values[k][i]) for k in COMPONENTS},
                "map": str(map_path.relative_to(run.out)),
                "map_npy": str(npy.relative_to(run.out)) if npy else None,
            }
            if len(detectors) > 1:
                record["scores_by_class"] = {d.bundle.meta["name"]: float(r[2][i])
                                             for d, r in zip(detectors, results, strict=True)}
            run.records.append(record)
        write_results(run, detectors)
        on_batch(len(scans))
    write_results(run, detectors)
    return run


def write_results(run: DetectRun, detectors: list[Detector]) -> None:
    """results.json (records + how the threshold was set) and results.csv, both atomic."""
    header = {
        "models": [{"model": str(d.bundle.path), "class": d.bundle.meta["name"],
                    "objective": d.bundle.meta["objective"], "threshold": d.threshold,
                    "threshold_origin": d.threshold_origin} for d in detectors],
        "mode": detectors[0].options.mode,
        "scans": len(run.records), "anomalous": run.anomalous, "unreadable": run.unreadable,
    }
    atomic_write_json(run.out / "results.json", {**header, "records": run.records})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RECORD_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(run.records)
    atomic_write_text(run.out / "results.csv", buffer.getvalue())
