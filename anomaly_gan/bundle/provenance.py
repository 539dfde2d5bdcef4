"""Which scans a bundle was trained on, so that evaluating on them can be flagged as optimistic."""

from __future__ import annotations

from pathlib import Path

from anomaly_gan.bundle.meta import BundleMeta
from anomaly_gan.data.labelled import NORMAL
from anomaly_gan.data.layouts import ScanRef, find_scans
from anomaly_gan.data.scan import ScanError


def training_overlap(refs: list[ScanRef], meta: BundleMeta) -> int:
    """How many normal scans are files the bundle trained on (same file, links followed). Checked
    while its training folder still exists; evaluating on them makes the figures optimistic."""
    t = meta.training
    folder = Path(t.data)
    if not t.train_ids or not folder.is_dir():
        return 0
    ids = set(t.train_ids)
    try:
        trained_on = {r.source.resolve() for r in find_scans(folder).refs if r.id in ids}
    except ScanError:
        return 0
    return sum(r.label == NORMAL and r.source.resolve() in trained_on for r in refs)


def unseen_refs(refs: list[ScanRef], meta: BundleMeta) -> tuple[list[ScanRef], int]:
    """`refs` without the normal scans whose ids the bundle trained or calibrated on, and how many
    were left out. Ids are file names: meant for the data the bundle was made from (e.g. a class
    root whose blocks it trained on), where what is left is the scans it never saw."""
    seen = set(meta.training.train_ids) | set(meta.training.validation_ids)
    kept = [r for r in refs if not (r.label == NORMAL and r.id in seen)]
    return kept, len(refs) - len(kept)
