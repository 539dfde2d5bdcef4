"""What a detect run is given to score: the scans found under its inputs, labelled, and the slice of
them one process takes. Light on purpose (no torch): wrong inputs are said before networks load."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path

from anomaly_gan.data.layouts import ScanRef, find_scans
from anomaly_gan.data.scan import ScanError
from anomaly_gan.report.records import Shard


class InputError(ValueError):
    """Inputs or a slice that cannot be scored; the message says which and why in one line, and
    `skipped` the other inputs that could not be read."""

    def __init__(self, message: str, skipped: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.skipped = skipped


@dataclass
class Inputs:
    refs: list[ScanRef]
    keys: list[str]  # each scan's path relative to the input it was found under: what a shard fingerprints
    problems: list[str]  # files or folders skipped, one line each
    shard: Shard | None = None


def find_inputs(paths: list[Path]) -> Inputs:
    """Every scan under `paths` (folders of any layout or single files), in discovery order; an input
    that cannot be read is a problem, not a stop. InputError when nothing at all can be scored."""
    refs, keys, problems = [], [], []
    for path in paths:
        try:
            found = find_scans(path)
        except ScanError as e:
            problems.append(str(e))
            continue
        base = path if path.is_dir() else path.parent
        refs += folder_labelled(path, found.refs)
        keys += [os.path.relpath(r.source, base) for r in found.refs]
        problems += found.skipped
    if not refs:
        raise InputError(problems[-1], tuple(problems[:-1])) if problems else InputError("no scans given")
    return Inputs(refs, keys, problems)


def folder_labelled(path: Path, refs: list[ScanRef]) -> list[ScanRef]:
    """Scans of a folder without test/<defect>/ subfolders are labelled with the folder's name (for
    example the class of a class folder), so the report does not call them 'good' unchecked."""
    if path.is_dir() and all(r.label == "good" for r in refs):
        return [replace(r, label=path.resolve().name) for r in refs]
    return refs


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' as (I, N)."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise InputError(f"--shard {text}: expected I/N, for example 0/4") from None
    if not 0 <= index < count:
        raise InputError(f"--shard {text}: I must be 0 to N-1")
    return index, count


def take_shard(inputs: Inputs, index: int, count: int) -> Inputs:
    """Every count-th scan from `index` in discovery order (sorted paths), the same slice on any
    machine, fingerprinted by what was split; the skipped inputs are said once, by slice 0."""
    digest = hashlib.sha256("\n".join(inputs.keys).encode("utf-8")).hexdigest()[:16]
    return Inputs(
        inputs.refs[index::count],
        inputs.keys[index::count],
        inputs.problems if index == 0 else [],
        Shard(index, count, len(inputs.refs), digest),
    )
