"""What `anomaly-gan info` reports about a folder of scans, per class."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anomaly_gan.data.layouts import find_classes, find_scans, iter_scans
from anomaly_gan.data.scan import ScanError


@dataclass
class ClassSummary:
    name: str
    path: Path
    layouts: set[str] = field(default_factory=set)
    scans: int = 0
    sizes: Counter = field(default_factory=Counter)
    units: Counter = field(default_factory=Counter)
    labels: Counter = field(default_factory=Counter)
    depth_min: float = np.inf
    depth_max: float = -np.inf
    problems: list[str] = field(default_factory=list)

    @property
    def depth_range(self) -> str:
        if not self.scans:
            return "-"
        if self.depth_min > self.depth_max:
            return "no depth (colour only)"
        return f"{self.depth_min:g}..{self.depth_max:g} {'/'.join(sorted(self.units))}"


def summarise(root: Path) -> Iterator[ClassSummary]:
    """Yields the class summary after each scan read, so callers can show progress."""
    for name, folder in find_classes(root).items():
        summary = ClassSummary(name, folder)
        try:
            found = find_scans(folder)
        except ScanError as e:
            summary.problems.append(str(e))
            yield summary
            continue
        summary.layouts, summary.problems = found.layouts, list(found.skipped)
        for ref, scan in iter_scans(found.refs):
            if isinstance(scan, ScanError):
                summary.problems.append(str(scan))
            else:
                summary.scans += 1
                summary.sizes[f"{scan.shape[1]}x{scan.shape[0]}"] += 1
                summary.labels[ref.label] += 1
                if scan.has_depth:
                    summary.units[scan.depth_unit] += 1
                    summary.depth_min = min(summary.depth_min, float(np.nanmin(scan.depth)))
                    summary.depth_max = max(summary.depth_max, float(np.nanmax(scan.depth)))
            yield summary
