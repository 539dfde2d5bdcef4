"""Detection records: one typed Record per scan, streamed to disk as they are produced.

A results folder holds
- results.jsonl: one record per line, appended and flushed after every batch, so an interrupt (even
  kill -9) loses at most the batch in flight; a torn last line is ignored when read back;
- results.csv: the same records as rows, appended alongside;
- run.json: the run itself (models and thresholds, mode, counts, unreadable files, notes, shard),
  small and rewritten atomically after every batch.
Nothing holds all records in memory: readers iterate the JSONL.
"""

from __future__ import annotations

import csv
import heapq
import io
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

from anomaly_gan.fsutil import atomic_write_json
from anomaly_gan.report.schema import RecordJson, RunJson
from anomaly_gan.typed_json import first_problem

RUN = "run.json"
RECORDS = "results.jsonl"
TABLE = "results.csv"
PANELS = ("top", "all", "none")
REPORT_TOP = 500  # scans shown with pictures in the report, and given a panel by default
HEAD_FIELDS = ("scan", "id", "label", "class", "model", "mode", "score", "threshold", "anomalous", "verdict")
FINDING_FIELDS = ("part", "defect")  # CSV columns: each finding's score (bundle.calibration's findings)
FINDING_TITLES = {"part": "wrong part", "defect": "defect"}  # how reports name them
NESTED_FIELDS = ("findings", "fired", "defect_at", "leading", "scores_by_class", "contributions")
TAIL_FIELDS = ("map", "map_npy")


@dataclass(frozen=True)
class Output:
    """What detect writes besides the records: panels for `panels` = top (flagged scans and the
    `top` most anomalous), all or none; float maps as .npy with `save_maps`."""

    save_maps: bool = False
    panels: str = "top"
    top: int = REPORT_TOP


@dataclass
class Record:
    scan: str  # the scan's colour file or single file
    id: str
    label: str  # folder label: "good" or the defect / class name
    class_: str  # the bundle's class (best-matching class with several bundles)
    model: str
    mode: str
    score: float  # higher = more anomalous
    threshold: float
    anomalous: bool
    components: dict[str, float]
    map: str | None  # panel picture, relative to the results folder; None when no panel was drawn
    map_npy: str | None = None
    scores_by_class: dict[str, float] | None = None  # with several bundles
    contributions: dict[str, float] = field(default_factory=dict)  # what each component added to its finding
    findings: dict[str, float] = field(default_factory=dict)  # finding ("part", "defect") -> its score
    fired: list[str] = field(default_factory=list)  # the findings at or above the threshold
    defect_at: list[int] | None = None  # [x, y] of the map's peak in the scan's frame, when "defect" fired
    leading: dict[str, list[str]] = field(default_factory=dict)  # per finding, the components that raised it most

    @property
    def verdict(self) -> str:
        """What fired, in words: "good", "wrong part (critic, size)", "defect at (x, y) (head)" or both."""
        said = []
        for name in self.fired:
            why = f" ({', '.join(self.leading[name])})" if self.leading.get(name) else ""
            where = f" at ({self.defect_at[0]}, {self.defect_at[1]})" if name == "defect" and self.defect_at else ""
            said.append(f"{FINDING_TITLES.get(name, name)}{where}{why}")
        return " and ".join(said) if said else ("anomalous" if self.anomalous else "good")

    def to_row(self) -> dict:
        """The CSV row: the record with each finding's score as a column of its own."""
        return self.to_dict() | {k: self.findings.get(k) for k in FINDING_FIELDS}

    def to_dict(self) -> dict:
        d = {
            "scan": self.scan,
            "id": self.id,
            "label": self.label,
            "class": self.class_,
            "model": self.model,
            "mode": self.mode,
            "score": self.score,
            "threshold": self.threshold,
            "anomalous": self.anomalous,
            "verdict": self.verdict,
            "findings": self.findings,
            "fired": self.fired,
            "defect_at": self.defect_at,
            "leading": self.leading,
            **self.components,
            "map": self.map,
            "map_npy": self.map_npy,
        }
        if self.scores_by_class is not None:
            d["scores_by_class"] = self.scores_by_class
        d["contributions"] = self.contributions
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Record:
        fixed = {*HEAD_FIELDS, *TAIL_FIELDS, *NESTED_FIELDS}
        return cls(
            d["scan"],
            d["id"],
            d["label"],
            d["class"],
            d["model"],
            d["mode"],
            d["score"],
            d["threshold"],
            d["anomalous"],
            {k: v for k, v in d.items() if k not in fixed},
            d["map"],
            d.get("map_npy"),
            d.get("scores_by_class"),
            d.get("contributions", {}),
            d.get("findings", {}),
            d.get("fired", []),
            d.get("defect_at"),
            d.get("leading", {}),
        )


@dataclass(frozen=True)
class ModelUsed:
    model: str
    class_: str
    objective: str
    threshold: float
    threshold_origin: str
    good_scores: list[float] = field(default_factory=list)  # held-out good scans, for the histogram
    undertrained: str = ""  # why the bundle looks undertrained, or ""
    bundle_id: str = ""  # digest of the bundle's model.json: the same bundle wherever it is copied

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "class": self.class_,
            "objective": self.objective,
            "threshold": self.threshold,
            "threshold_origin": self.threshold_origin,
            "good_scores": self.good_scores,
            "undertrained": self.undertrained,
            "bundle_id": self.bundle_id,
        }

    @classmethod
    def from_dict(cls, m: dict) -> ModelUsed:
        return cls(
            m["model"],
            m["class"],
            m["objective"],
            m["threshold"],
            m["threshold_origin"],
            m.get("good_scores", []),
            m.get("undertrained", ""),
            m.get("bundle_id", ""),
        )


@dataclass(frozen=True)
class Shard:
    """Which slice of the discovered scans a run scored: scans index, index + count, ... of the
    `discovered` ones, whose paths (relative to the inputs given) digest to `inputs`."""

    index: int
    count: int
    discovered: int
    inputs: str

    @property
    def assigned(self) -> int:
        return len(range(self.index, self.discovered, self.count))

    def __str__(self) -> str:
        return f"shard {self.index}/{self.count}"


@dataclass
class Results:
    """The run: everything about it except the records themselves (those are in results.jsonl)."""

    models: list[ModelUsed]
    mode: str
    unreadable: list[str] = field(default_factory=list)
    partial: bool = True  # until the run finishes: an interrupted run's files say so
    notes: list[str] = field(default_factory=list)  # said once per run, e.g. how large scans were resized
    scans: int = 0
    anomalous: int = 0
    shard: Shard | None = None
    merged: list[str] = field(default_factory=list)  # with `merge`: the shard folders joined
    found_unreadable: int = 0  # of `unreadable`, those met while finding scans (not among the scans)

    def to_dict(self) -> dict:
        return {
            "models": [m.to_dict() for m in self.models],
            "mode": self.mode,
            "scans": self.scans,
            "anomalous": self.anomalous,
            "unreadable": self.unreadable,
            "partial": self.partial,
            "notes": self.notes,
            "shard": asdict(self.shard) if self.shard else None,
            "merged": self.merged,
            "found_unreadable": self.found_unreadable,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Results:
        return cls(
            [ModelUsed.from_dict(m) for m in d["models"]],
            d["mode"],
            d["unreadable"],
            d["partial"],
            d["notes"],
            d["scans"],
            d["anomalous"],
            Shard(**d["shard"]) if d.get("shard") else None,
            d.get("merged", []),
            d.get("found_unreadable", 0),
        )


class ResultsError(ValueError):
    """A results folder whose files are not ones detect or evaluate wrote; the message names the file."""


def read_results(folder: Path) -> Results:
    path = folder / RUN
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{folder}: no {RUN} (run detect or evaluate first)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResultsError(f"{path}: not a results file anomaly-gan wrote ({type(e).__name__}: {e})") from None
    problem = first_problem(RunJson, raw)
    if problem:
        raise ResultsError(f"{path}: not a results file anomaly-gan wrote ({problem})")
    return Results.from_dict(raw)


def read_records(folder: Path) -> Iterator[Record]:
    """The records one at a time; a last line without its newline (cut by a kill) is skipped."""
    path = folder / RECORDS
    if not path.exists():
        return
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.endswith("\n"):
                return
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as e:
                raise ResultsError(f"{path}:{number}: not a record anomaly-gan wrote ({e.msg})") from None
            problem = first_problem(RecordJson, raw)
            if problem:
                raise ResultsError(f"{path}:{number}: not a record anomaly-gan wrote ({problem})")
            yield Record.from_dict(raw)


def top_records(folder: Path, n: int) -> list[Record]:
    """The n highest-scoring records, most anomalous first, in memory for n only."""
    return heapq.nlargest(n, read_records(folder), key=lambda r: r.score)


class ResultsWriter:
    """Appends records to results.jsonl and results.csv, flushes them, and rewrites run.json after
    every batch. Opened on an existing folder (resume, merge) it appends after the intact records."""

    def __init__(self, folder: Path, results: Results) -> None:
        self.folder, self.results = folder, results
        _cut_torn_line(folder / RECORDS)
        self._csv_file: TextIO | None = None
        self._csv: csv.DictWriter | None = None
        first = next(read_records(folder), None)
        if first is not None:  # resumed: the table's own last row may be torn, so it is rebuilt
            self._open_csv(list(first.components))
            self._csv.writerows(r.to_row() for r in read_records(folder))
        self._jsonl = (folder / RECORDS).open("a", encoding="utf-8")
        self.save()

    def add(self, records: list[Record]) -> None:
        for r in records:
            self._jsonl.write(json.dumps(r.to_dict()) + "\n")
            if self._csv is None:
                self._open_csv(list(r.components))
            self._csv.writerow(r.to_row())
            self.results.scans += 1
            self.results.anomalous += r.anomalous
        self._jsonl.flush()
        if self._csv_file is not None:
            self._csv_file.flush()
        self.save()

    def save(self) -> None:
        atomic_write_json(self.folder / RUN, self.results.to_dict())

    def close(self, finished: bool) -> None:
        self.results.partial = not finished
        self._jsonl.close()
        if self._csv_file is not None:
            self._csv_file.close()
        self.save()

    def abandon(self) -> None:
        """Close the files after a failed write, saving nothing more (a full disk): reopening the
        folder drops a record cut half-way, as after a kill."""
        for f in (self._jsonl, self._csv_file):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass

    def _open_csv(self, components: list[str]) -> None:
        """The CSV's columns follow the first record's components."""
        self._csv_file = (self.folder / TABLE).open("w", encoding="utf-8", newline="")
        self._csv = csv.DictWriter(
            self._csv_file, fieldnames=[*HEAD_FIELDS, *FINDING_FIELDS, *components, *TAIL_FIELDS], extrasaction="ignore"
        )
        self._csv.writeheader()


def _cut_torn_line(path: Path) -> None:
    """Drop a partly written last line, so appended records start on a line of their own."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        f.seek(0)
        keep = f.read().rfind(b"\n") + 1
        f.truncate(keep)


def records_as_json(folder: Path, out: io.TextIOBase) -> None:
    """The records as one JSON array, written one record at a time (for --json)."""
    out.write("[")
    for i, r in enumerate(read_records(folder)):
        out.write(("," if i else "") + "\n  " + json.dumps(r.to_dict()))
    out.write("\n]\n")
