"""Detection records: one typed Record per scan, and the results files that hold them.

results.json = the models used (threshold and how it was set), counts, unreadable files and the
records; results.csv = one row per record. Both are written atomically; `read_results` reads
results.json back for `report` and the HTML page.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from anomaly_gan.fsutil import atomic_write_json, atomic_write_text

HEAD_FIELDS = ("scan", "id", "label", "class", "model", "mode", "score", "threshold", "anomalous")
TAIL_FIELDS = ("map", "map_npy")


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
    map: str  # panel picture, relative to the results folder
    map_npy: str | None = None
    scores_by_class: dict[str, float] | None = None  # with several bundles
    contributions: dict[str, float] = field(default_factory=dict)  # what each component added to the score

    def to_dict(self) -> dict:
        d = {"scan": self.scan, "id": self.id, "label": self.label, "class": self.class_, "model": self.model,
             "mode": self.mode, "score": self.score, "threshold": self.threshold, "anomalous": self.anomalous,
             **self.components, "map": self.map, "map_npy": self.map_npy}
        if self.scores_by_class is not None:
            d["scores_by_class"] = self.scores_by_class
        d["contributions"] = self.contributions
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Record:
        fixed = {*HEAD_FIELDS, *TAIL_FIELDS, "scores_by_class", "contributions"}
        return cls(d["scan"], d["id"], d["label"], d["class"], d["model"], d["mode"], d["score"],
                   d["threshold"], d["anomalous"], {k: v for k, v in d.items() if k not in fixed},
                   d["map"], d.get("map_npy"), d.get("scores_by_class"), d.get("contributions", {}))


@dataclass(frozen=True)
class ModelUsed:
    model: str
    class_: str
    objective: str
    threshold: float
    threshold_origin: str
    good_scores: list[float] = field(default_factory=list)  # held-out good scans, for the histogram
    undertrained: str = ""  # why the bundle looks undertrained, or ""

    def to_dict(self) -> dict:
        return {"model": self.model, "class": self.class_, "objective": self.objective,
                "threshold": self.threshold, "threshold_origin": self.threshold_origin,
                "good_scores": self.good_scores, "undertrained": self.undertrained}


@dataclass
class Results:
    models: list[ModelUsed]
    mode: str
    records: list[Record] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    partial: bool = False  # interrupted: the records are the scans scored before the stop
    notes: list[str] = field(default_factory=list)  # said once per run, e.g. how large scans were resized

    @property
    def anomalous(self) -> int:
        return sum(r.anomalous for r in self.records)

    def to_dict(self) -> dict:
        return {"models": [m.to_dict() for m in self.models], "mode": self.mode, "scans": len(self.records),
                "anomalous": self.anomalous, "unreadable": self.unreadable,
                "partial": self.partial, "notes": self.notes, "records": [r.to_dict() for r in self.records]}


def write_results(folder: Path, results: Results) -> None:
    """results.json and results.csv, both atomic."""
    atomic_write_json(folder / "results.json", results.to_dict())
    names = list(results.records[0].components) if results.records else []
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*HEAD_FIELDS, *names, *TAIL_FIELDS], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(r.to_dict() for r in results.records)
    atomic_write_text(folder / "results.csv", buffer.getvalue())


class ResultsError(ValueError):
    """A results.json that is not one detect or evaluate wrote; the message names it."""


def read_results(folder: Path) -> Results:
    path = folder / "results.json"
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        models = [ModelUsed(m["model"], m["class"], m["objective"], m["threshold"], m["threshold_origin"],
                            m.get("good_scores", []), m.get("undertrained", "")) for m in d["models"]]
        return Results(models, d["mode"], [Record.from_dict(r) for r in d["records"]], d["unreadable"],
                       d.get("partial", False), d.get("notes", []))
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise ResultsError(f"{path}: not a results file anomaly-gan wrote ({type(e).__name__}: {e})") from None
