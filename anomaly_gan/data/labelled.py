"""Labelled scans for evaluation: which are normal ('good') and which anomalous (a defect kind or
another class), from an MVTec-style tree, a class root, or folders named on the command line."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from anomaly_gan.data.layouts import ScanRef, find_classes, find_scans
from anomaly_gan.data.scan import ScanError

NORMAL = "good"


def labelled_refs(root: Path | None, normal: Path | None, anomalous: list[Path],
                  normal_class: str | None) -> list[ScanRef]:
    """Scans with label 'good' (normal) or a defect/class name (anomalous)."""
    if root is not None and normal_class is not None:
        classes = find_classes(root)
        if normal_class not in classes:
            raise ScanError(f"{root}: no class {normal_class!r} (found {', '.join(classes)})")
        refs = []
        for name, folder in classes.items():
            label = NORMAL if name == normal_class else name
            refs += [replace(r, label=label) for r in find_scans(folder).refs]
        return refs
    if root is not None:
        if (root / "test").is_dir():  # an MVTec-style class root: its train/ and validation/ are not test scans
            root = root / "test"
        refs = find_scans(root).refs
        if not any(r.label != NORMAL for r in refs):
            raise ScanError(f"{root}: no anomalous scans (expected test/<defect>/ folders beside test/good/, "
                            "or use --normal-class with a class root)")
        return refs
    if normal is None or not anomalous:
        raise ScanError("give ROOT, or --normal DIR with at least one --anomalous DIR")
    refs = [replace(r, label=NORMAL) for r in find_scans(normal).refs]
    for folder in anomalous:
        refs += [r if r.label != NORMAL else replace(r, label=folder.name) for r in find_scans(folder).refs]
    return refs
