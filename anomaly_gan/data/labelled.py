"""Labelled scans for evaluation: which are normal ('good') and which anomalous (a defect kind or
another class), from an MVTec-style tree, a class root, or folders named on the command line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from anomaly_gan.data.layouts import Discovery, ScanRef, find_classes, find_scans
from anomaly_gan.data.scan import ScanError

NORMAL = "good"


def labelled_refs(root: Path | None, normal: Path | None, anomalous: list[Path], normal_class: str | None) -> Discovery:
    """Scans with label 'good' (normal) or a defect/class name (anomalous), and the files skipped
    while finding them (unreadable, unpaired), one line each."""
    found = Discovery()
    if root is not None and normal_class is not None:
        classes = find_classes(root)
        if normal_class not in classes:
            raise ScanError(f"{root}: no class {normal_class!r} (found {', '.join(classes)})")
        for name, folder in classes.items():
            label = NORMAL if name == normal_class else name
            found.extend(_relabelled(find_scans(folder), lambda r, label=label: label))
        return found
    if root is not None:
        if (root / "test").is_dir():  # an MVTec-style class root: its train/ and validation/ are not test scans
            root = root / "test"
        found = find_scans(root)
        if not any(r.label != NORMAL for r in found.refs):
            raise ScanError(
                f"{root}: no anomalous scans (expected test/<defect>/ folders beside test/good/, "
                "or use --normal-class with a class root)"
            )
        return found
    if normal is None or not anomalous:
        raise ScanError("give ROOT, or --normal DIR with at least one --anomalous DIR")
    found.extend(_relabelled(find_scans(normal), lambda r: NORMAL))
    for folder in anomalous:
        name = folder.name  # a folder of anomalous scans labels them, unless they carry a defect label already
        found.extend(_relabelled(find_scans(folder), lambda r, name=name: r.label if r.label != NORMAL else name))
    return found


def _relabelled(found: Discovery, label: Callable[[ScanRef], str]) -> Discovery:
    return Discovery([replace(r, label=label(r)) for r in found.refs], found.skipped, found.layouts)
