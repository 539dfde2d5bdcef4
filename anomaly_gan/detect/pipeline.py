"""`detect` end to end: stream scans in batches, score them against one or more bundles, write
records, panels and maps as it goes (results survive an interrupt)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from anomaly_gan.data.layouts import ScanRef, iter_scans
from anomaly_gan.data.scan import Scan, ScanError
from anomaly_gan.detect.detector import Detector, ScanScores
from anomaly_gan.fsutil import atomic_save_npy
from anomaly_gan.report.images import captioned_row, colour_image, depth_image, heat_overlay, save_rgb
from anomaly_gan.report.records import ModelUsed, Record, Results, write_results


def batches(refs: list[ScanRef], size: int, unreadable: list[str]) -> Iterator[list[Scan]]:
    """Load scans lazily in batches; unreadable ones are noted and skipped."""
    batch: list[Scan] = []
    for _, scan in iter_scans(refs):
        if isinstance(scan, ScanError):
            unreadable.append(str(scan))
            continue
        batch.append(scan)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _panel(x: np.ndarray, recon: np.ndarray, maps: np.ndarray, scales: tuple[float, float, float]) -> np.ndarray:
    """In the bundle's (object-centred) frame: colour | depth | reconstructed colour |
    reconstructed depth | colour map | depth map | combined map, each map over the colour image."""
    rgb = colour_image(x)
    combined, colour, depth = (heat_overlay(rgb, m, scale) for m, scale in zip(maps, scales, strict=True))
    tiles = [rgb, depth_image(x), colour_image(recon), depth_image(recon), colour, depth, combined]
    captions = ["colour", "depth", "recon. colour", "recon. depth", f"colour map 0-{scales[1]:.2f}",
                f"depth map 0-{scales[2]:.2f}", f"combined 0-{scales[0]:.2f}"]
    return captioned_row(tiles, captions, 3)


def _unique_name(scan: Scan, used: set[str]) -> str:
    base = f"{scan.label}_{scan.id}" if scan.label != "good" else scan.id
    name, k = base, 1
    while name in used:
        k += 1
        name = f"{base}_{k}"
    used.add(name)
    return name


def models_used(detectors: list[Detector]) -> list[ModelUsed]:
    return [ModelUsed(str(d.bundle.path), d.bundle.meta.name, d.bundle.meta.objective, float(d.threshold),
                      d.threshold_origin, list(d.calibration.good_scores), d.bundle.meta.undertrained())
            for d in detectors]


def detect(refs: list[ScanRef], detectors: list[Detector], out: Path, save_maps: bool,
           results: Results | None = None, on_batch: Callable[[int], None] = lambda n: None,
           on_scored: Callable[[list[Scan], ScanScores], None] = lambda scans, s: None) -> Results:
    """Score every readable scan; with several detectors, pick the best-matching class per scan.

    `results` may be passed in (with unreadable files found during discovery) so that a caller
    holds what was scored so far if the run is interrupted. `on_scored` sees each batch's scans
    and the chosen detector's scores (evaluate keeps maps and masks from it, in memory).
    """
    results = results or Results(models_used(detectors), detectors[0].mode)
    used: set[str] = set()
    sizes: set[tuple[int, int]] = set()
    for scans in batches(refs, detectors[0].options.batch_size, results.unreadable):
        scored = [d.score(scans) for d in detectors]
        results.notes += resize_notes(scans, scored[0], detectors[0].bundle.meta.network.image_size, sizes)
        # Best match: the bundle for which the scan sits lowest relative to its threshold.
        best = np.stack([s.scores - d.threshold for d, s in zip(detectors, scored, strict=True)]).argmin(axis=0)
        for i, scan in enumerate(scans):
            detector, s = detectors[best[i]], scored[best[i]]
            results.records.append(_record(scan, i, detector, s, out, _unique_name(scan, used), save_maps))
            if len(detectors) > 1:
                results.records[-1].scores_by_class = {d.bundle.meta.name: float(r.scores[i])
                                                       for d, r in zip(detectors, scored, strict=True)}
        if len(detectors) == 1:
            on_scored(scans, scored[0])
        write_results(out, results)
        on_batch(len(scans))
    write_results(out, results)
    return results


def resize_notes(scans: list[Scan], scored: ScanScores, size: int, seen: set[tuple[int, int]]) -> list[str]:
    """One line per image size not seen before that is far from the network's or not square: how
    much it was scaled (scans are cropped around the object, then resized)."""
    notes = []
    for scan, box in zip(scans, scored.boxes, strict=True):
        h, w = scan.shape
        if (h, w) in seen or (h == w and max(h, w) <= 2 * size):
            continue
        seen.add((h, w))
        notes.append(f"{w}x{h} scans (first: {scan.source}) are framed as a {box.side}-pixel square (around "
                     f"the object, padded where needed) and resized to {size}x{size}: scale x{size / box.side:.3g}")
    return notes


def _record(scan: Scan, i: int, detector: Detector, s: ScanScores, out: Path, name: str,
            save_maps: bool) -> Record:
    """Write the scan's panel (and map) and describe it."""
    map_path = out / "maps" / f"{name}.png"
    save_rgb(map_path, _panel(s.x[i].numpy(), s.scored.recon[i], s.scored.maps[i], detector.map_scales))
    npy = None
    if save_maps:
        npy = out / "maps" / f"{name}.npy"
        atomic_save_npy(npy, s.scan_maps(i, scan.shape))
    return Record(
        scan=str(scan.source), id=scan.id, label=scan.label, class_=detector.bundle.meta.name,
        model=str(detector.bundle.path), mode=detector.mode, score=float(s.scores[i]),
        threshold=float(detector.threshold), anomalous=bool(s.anomalous[i]),
        components={k: float(v[i]) for k, v in s.scored.values.items()},
        map=str(map_path.relative_to(out)), map_npy=str(npy.relative_to(out)) if npy else None,
        contributions={k: round(float(v[i]), 3) for k, v in s.contributions.items()})
