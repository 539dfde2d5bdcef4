"""`detect` end to end: read scans in batches, score them against one or more bundles, stream
records, panels and maps to disk as it goes.

Three stages overlap: a reader thread decodes the next batch while the networks score this one,
and a writer thread draws panels and appends records for the previous one. Memory stays flat
whatever the number of scans: at most two batches wait on each side, and records go straight to
results.jsonl (an interrupt loses at most the batches in flight).
"""

from __future__ import annotations

import hashlib
import heapq
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anomaly_gan.bundle.calibration import DEFECT
from anomaly_gan.data.channels import Channels
from anomaly_gan.data.layouts import ScanRef, iter_scans
from anomaly_gan.data.scan import Scan, ScanError
from anomaly_gan.detect.judge import Judge, ScanScores
from anomaly_gan.fsutil import atomic_save_npy
from anomaly_gan.report.images import captioned_row, colour_image, depth_image, heat_overlay, save_rgb
from anomaly_gan.report.records import ModelUsed, Output, Record, Results, ResultsWriter

IN_FLIGHT = 2  # batches decoded ahead, and batches waiting to be written
PANEL_PIXELS = 192  # a panel tile's side: 64-pixel frames are drawn 3x, 32 6x, 128 once


class PanelChoice:
    """Decides, as scores arrive, which scans get a panel: with "top", every flagged scan and every
    scan that is among the `top` highest scores seen so far (a min-heap of those scores), so the
    report's top N all have pictures without keeping any scan in memory."""

    def __init__(self, output: Output) -> None:
        self.output, self.heap = output, []

    def wants(self, score: float, anomalous: bool) -> bool:
        if self.output.panels != "top":
            return self.output.panels == "all"
        top = self.output.top
        if top and (len(self.heap) < top or score > self.heap[0]):
            (heapq.heappush if len(self.heap) < top else heapq.heappushpop)(self.heap, score)
            return True
        return anomalous


class Names:
    """A file name per scan, unique within the run: label_id, with _2, _3 ... on repeats. A name
    longer than MAX_NAME characters keeps its start and gets a hash of the whole, so no scan id
    can make a panel or map impossible to write (file systems allow 255 bytes)."""

    MAX_NAME = 96

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, label: str, id: str) -> str:
        base = f"{label}_{id}" if label != "good" else id
        if len(base.encode("utf-8")) > self.MAX_NAME:
            digest = hashlib.sha1(base.encode("utf-8", "surrogateescape")).hexdigest()[:12]
            base = base.encode("utf-8")[: self.MAX_NAME - 13].decode("utf-8", "ignore") + "-" + digest
        name, k = base, 1
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name


def models_used(detectors: list[Judge]) -> list[ModelUsed]:
    return [
        ModelUsed(
            str(d.path),
            d.meta.name,
            d.meta.objective,
            float(d.threshold),
            d.threshold_origin,
            list(d.calibration.good_scores),
            d.meta.undertrained(),
            hashlib.sha256((d.path / "model.json").read_bytes()).hexdigest()[:16],
        )
        for d in detectors
    ]


def detect(
    refs: list[ScanRef],
    detectors: list[Judge],
    out: Path,
    output: Output,
    results: Results,
    on_batch: Callable[[int], None] = lambda n: None,
    on_scored: Callable[[list[Scan], ScanScores], None] = lambda scans, s: None,
    names: Names | None = None,
) -> Results:
    """Score every readable scan; with several detectors, pick the best-matching class per scan.

    `results` is the run's header (models, unreadable files found during discovery); it is kept up
    to date in run.json after every batch and marked finished at the end. `on_scored` sees each
    batch's scans and the chosen detector's scores (evaluate keeps maps and masks from it).
    `names` continues the file names of a resumed run.
    """
    writer = ResultsWriter(out, results)
    choice, names = PanelChoice(output), names or Names()
    sizes: set[tuple[int, int]] = set()
    pending: list[Future] = []
    finished = False
    with (
        ThreadPoolExecutor(1, thread_name_prefix="detect-writer") as pool,
        _read_ahead(refs, detectors[0].options.batch_size, results.unreadable) as batches,
    ):
        try:
            for batch in batches:
                scans = scorable(batch, detectors, results.unreadable)
                if not scans:
                    continue
                scored, plans = score_scans(scans, detectors, names, choice, results, sizes)
                if len(detectors) == 1:
                    on_scored(scans, scored[0])
                if len(pending) == IN_FLIGHT:
                    pending.pop(0).result()
                pending.append(pool.submit(write_batch, writer, scans, detectors, scored, plans, out, output, on_batch))
            while pending:  # finished only once every batch is written: a failed write leaves it partial
                pending.pop(0).result()
            finished = True
        finally:
            try:
                for future in pending:  # whole batches: what was scored is written before leaving
                    future.result()
            finally:
                writer.close(finished)
    return results


def score_scans(
    scans: list[Scan],
    detectors: list[Judge],
    names: Names,
    choice: PanelChoice,
    results: Results,
    sizes: set[tuple[int, int]],
) -> tuple[list[ScanScores], list[_Plan]]:
    """Score scans every detector can score against each of them, and plan each scan's record: its
    best-matching bundle (the one it sits lowest against, relative to its threshold), file name and
    whether it gets a panel. New image sizes are noted in `results`."""
    scored = [d.score(scans) for d in detectors]
    results.notes += resize_notes(scans, scored[0], detectors[0].meta.network.image_size, sizes)
    best = np.stack([s.scores - d.threshold for d, s in zip(detectors, scored, strict=True)]).argmin(0)
    plans = [
        _Plan(
            i,
            int(b),
            names(scan.label, scan.id),
            choice.wants(float(scored[b].scores[i]), bool(scored[b].anomalous[i])),
        )
        for i, (scan, b) in enumerate(zip(scans, best, strict=True))
    ]
    return scored, plans


def scorable(scans: list[Scan], detectors: list[Judge], refused: list[str]) -> list[Scan]:
    """The scans every bundle can score; the others are noted in `refused` with the reason."""
    kept = []
    for scan in scans:
        why = next((why for d in detectors if (why := d.refuses(scan))), None)
        if why:
            refused.append(f"{scan.source}: {why}")
        else:
            kept.append(scan)
    return kept


@dataclass(frozen=True)
class _Plan:
    index: int  # in the batch
    detector: int  # the best-matching one
    name: str
    panel: bool


def write_batch(
    writer: ResultsWriter,
    scans: list[Scan],
    detectors: list[Judge],
    scored: list[ScanScores],
    plans: list[_Plan],
    out: Path,
    output: Output,
    on_batch: Callable[[int], None] = lambda n: None,
) -> list[Record]:
    """Draw the planned panels, append the records and return them."""
    records = []
    for scan, plan in zip(scans, plans, strict=True):
        record = _record(scan, plan, detectors[plan.detector], scored[plan.detector], out, output)
        if len(detectors) > 1:
            record.scores_by_class = {
                d.meta.name: float(s.scores[plan.index]) for d, s in zip(detectors, scored, strict=True)
            }
        records.append(record)
    writer.add(records)
    on_batch(len(scans))
    return records


class _read_ahead:
    """Batches of decoded scans from a reader thread, at most IN_FLIGHT ahead; unreadable scans are
    noted in `unreadable` and skipped. Leaving the block stops the reader."""

    def __init__(self, refs: list[ScanRef], size: int, unreadable: list[str]) -> None:
        self.queue: queue.Queue = queue.Queue(IN_FLIGHT)
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=self._read, args=(refs, size, unreadable), daemon=True, name="detect-reader"
        )

    def __enter__(self) -> Iterator[list[Scan]]:
        self.thread.start()
        return self._batches()

    def __exit__(self, *exc) -> None:
        self.stop.set()
        while self.thread.is_alive():
            try:
                self.queue.get(timeout=0.1)
            except queue.Empty:
                pass
        self.thread.join()

    def _batches(self) -> Iterator[list[Scan]]:
        while (item := self.queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item

    def _read(self, refs: list[ScanRef], size: int, unreadable: list[str]) -> None:
        batch: list[Scan] = []
        try:
            for _, scan in iter_scans(refs):
                if self.stop.is_set():
                    return
                if isinstance(scan, ScanError):
                    unreadable.append(str(scan))
                    continue
                batch.append(scan)
                if len(batch) == size:
                    self._put(batch)
                    batch = []
            if batch:
                self._put(batch)
            self._put(None)
        except BaseException as e:  # noqa: BLE001 - handed to the scoring thread, which raises it
            self._put(e)

    def _put(self, item) -> None:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                pass


def resize_notes(scans: list[Scan], scored: ScanScores, size: int, seen: set[tuple[int, int]]) -> list[str]:
    """One line per image size not seen before that is far from the network's or not square: how
    much it was scaled (scans are cropped around the object, then resized)."""
    notes = []
    for scan, box in zip(scans, scored.boxes, strict=True):
        h, w = scan.shape
        if (h, w) in seen or (h == w and max(h, w) <= 2 * size):
            continue
        seen.add((h, w))
        notes.append(
            f"{w}x{h} scans (first: {scan.source}) are framed as a {box.side}-pixel square (around "
            f"the object, padded where needed) and resized to {size}x{size}: scale x{size / box.side:.3g}"
        )
    return notes


def _panel(
    x: np.ndarray, recon: np.ndarray, maps: np.ndarray, scales: tuple[float, float, float], channels: Channels
) -> np.ndarray:
    """In the bundle's (object-centred) frame: colour | depth | reconstructed colour |
    reconstructed depth | colour map | depth map | combined map, each map over the colour image
    (over the depth picture for depth models); what the model does not see is left out."""
    backdrop = colour_image(x) if channels.colour else depth_image(x)
    combined, colour, depth = (heat_overlay(backdrop, m, scale) for m, scale in zip(maps, scales, strict=True))
    tiles = [
        ("colour", channels.colour, colour_image(x)),
        ("depth", channels.depth, depth_image(x)),
        ("recon. colour", channels.colour, colour_image(recon)),
        ("recon. depth", channels.depth, depth_image(recon)),
        (f"colour map 0-{scales[1]:.2f}", channels.colour, colour),
        (f"depth map 0-{scales[2]:.2f}", channels.depth, depth),
        (f"combined 0-{scales[0]:.2f}", True, combined),
    ]
    shown = [(caption, tile) for caption, on, tile in tiles if on]
    return captioned_row([tile for _, tile in shown], [caption for caption, _ in shown], PANEL_PIXELS // x.shape[-1])


def _record(scan: Scan, plan: _Plan, detector: Judge, s: ScanScores, out: Path, output: Output) -> Record:
    """Write the scan's panel and map if wanted, and describe it."""
    i = plan.index
    panel = npy = None
    if plan.panel:
        panel = out / "maps" / f"{plan.name}.jpg"
        save_rgb(
            panel,
            _panel(s.x[i], s.scored.recon[i], s.scored.maps[i], detector.map_scales, detector.meta.channels),
        )
    if output.save_maps:
        npy = out / "maps" / f"{plan.name}.npy"
        atomic_save_npy(npy, s.scan_maps(i, scan.shape))
    fired = detector.fired(s, i)
    contributions = {k: round(float(v[i]), 3) for k, v in s.contributions.items()}
    return Record(
        scan=str(scan.source),
        id=scan.id,
        label=scan.label,
        class_=detector.meta.name,
        model=str(detector.path),
        mode=detector.mode,
        score=float(s.scores[i]),
        threshold=float(detector.threshold),
        anomalous=bool(s.anomalous[i]),
        components={k: float(v[i]) for k, v in s.scored.values.items()},
        map=str(panel.relative_to(out)) if panel else None,
        map_npy=str(npy.relative_to(out)) if npy else None,
        contributions=contributions,
        findings={k: round(float(v[i]), 3) for k, v in s.findings.items()},
        fired=list(fired),
        defect_at=_peak(s.scan_maps(i, scan.shape)[0]) if DEFECT in fired else None,
        leading=detector.calibration.leading(contributions),
    )


def _peak(combined: np.ndarray) -> list[int]:
    """[x, y] of the combined map's highest point."""
    y, x = np.unravel_index(int(np.argmax(combined)), combined.shape)
    return [int(x), int(y)]
