"""Write whole synthetic data sets: good scans in the seed layout, or MVTec-style test trees.

Each scan comes from its own random stream (seed, shape, index), so output is identical for a
given seed whatever the number of worker processes.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np

from anomaly_gan.data.defects import DEFECTS, inject
from anomaly_gan.data.layouts import ScanRef, load_scan
from anomaly_gan.data.mesh_defects import MESH_DEFECTS, render_defective
from anomaly_gan.data.scan import Scan, ScanError
from anomaly_gan.data.synth import render_scan, scan_rng
from anomaly_gan.data.writers import write_scan
from anomaly_gan.deps import open3d


def _destination(out: Path, scan: Scan, tree: bool) -> Path:
    return out / "test" / scan.label if tree else out


def _maybe_defective(scan: Scan, rng: np.random.Generator, rate: float) -> Scan:
    if rng.random() >= rate:
        return scan
    return inject(scan, str(rng.choice(list(DEFECTS))), rng)


def _render_one(index: int, out: Path, shape: str, seed: int, rate: float, size: int, source: str) -> Path:
    rng, defect_rng = scan_rng(seed, shape, index), scan_rng(seed, shape + ":defect", index)
    if source == "mesh" and defect_rng.random() < rate:
        kind = str(defect_rng.choice(MESH_DEFECTS))
        scan = render_defective(shape, rng, f"{index:05d}", kind, defect_rng, size)
    else:
        scan = render_scan(shape, rng, f"{index:05d}", size)
        if source == "image":
            scan = _maybe_defective(scan, defect_rng, rate)
    return write_scan(scan, _destination(out, scan, rate > 0), "seed")


DEFECT_SOURCES = ("mesh", "image")  # made on the 3-D part before rendering, or injected in the images


def synthesise(
    out: Path,
    shape: str,
    count: int,
    seed: int = 0,
    defect_rate: float = 0.0,
    workers: int | None = None,
    size: int = 64,
    source: str = "mesh",
) -> Iterator[Path]:
    """Render `count` scans of `shape`, `size` pixels square, into `out`; yields each written
    colour path.

    With defect_rate 0 `out` holds one seed-layout folder; otherwise an MVTec-style test tree
    (`test/good`, `test/<defect>` with `gt/` masks), its defects from `source`: data.mesh_defects
    ("mesh") or data.defects ("image").
    """
    if source not in DEFECT_SOURCES:
        raise ValueError(f"unknown defect source {source!r}; choose from {', '.join(DEFECT_SOURCES)}")
    open3d()  # here, not in a worker, so that a missing libusb is one line
    job = partial(_render_one, out=out, shape=shape, seed=seed, rate=defect_rate, size=size, source=source)
    workers = workers or min(2, multiprocessing.cpu_count())
    if workers == 1 or count < 16:
        yield from map(job, range(count))
        return
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        yield from pool.imap(job, range(count), chunksize=8)


def inject_into(refs: list[ScanRef], out: Path, rate: float, seed: int = 0) -> Iterator[Path | ScanError]:
    """Copy real good scans into an MVTec-style test tree, a fraction `rate` with a defect each."""
    for index, ref in enumerate(refs):
        try:
            scan = load_scan(ref)
            scan = _maybe_defective(scan, np.random.default_rng([seed, index]), rate)
            yield write_scan(scan, _destination(out, scan, True), "seed")
        except ScanError as e:
            yield e
