"""The shape of run.json and of each results.jsonl record, checked (pydantic, strict) when a results
folder is read back (`report`, `merge`, `detect --resume`): a hand-edited or damaged file fails in
one line naming the file and the field, never half-way through writing a report."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from anomaly_gan.typed_json import Bounded, Count, Finite, Modes, Strict

Name = Annotated[str, Field(max_length=4096)]


class ModelUsedJson(Strict):
    model: Name
    class_: Name = Field(alias="class")
    objective: Name
    threshold: Finite  # --threshold may set any finite value
    threshold_origin: Name
    good_scores: list[Bounded] = []
    undertrained: str = ""
    bundle_id: str = ""


class ShardJson(Strict):
    index: Count
    count: Annotated[int, Field(ge=1)]
    discovered: Count
    inputs: str

    @model_validator(mode="after")
    def _index_in_range(self) -> ShardJson:
        if self.index >= self.count:
            raise ValueError(f"index {self.index} is not below count {self.count}")
        return self


class RunJson(Strict):
    models: Annotated[list[ModelUsedJson], Field(min_length=1)]
    mode: Modes
    scans: Count
    anomalous: Count
    unreadable: list[str]
    partial: bool
    notes: list[str]
    shard: ShardJson | None = None
    merged: list[str] = []
    found_unreadable: Count = 0


class RecordJson(Strict):
    """A record: the fixed fields below, and one number per score component beside them."""

    model_config = ConfigDict(strict=True, extra="allow")

    scan: Name
    id: Name
    label: Name
    class_: Name = Field(alias="class")
    model: Name
    mode: Modes
    score: float  # NaN is a score a report can still show; a string is not
    threshold: Finite  # --threshold may set any finite value
    anomalous: bool
    map: Name | None
    map_npy: Name | None = None
    scores_by_class: dict[str, float] | None = None
    contributions: dict[str, float] = {}
    verdict: Name = ""
    findings: dict[str, float] = {}
    fired: list[Literal["part", "defect"]] = []
    defect_at: Annotated[list[int], Field(min_length=2, max_length=2)] | None = None
    leading: dict[str, list[Name]] = {}

    @model_validator(mode="after")
    def _components_are_numbers(self) -> RecordJson:
        for key, value in (self.model_extra or {}).items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"component {key!r} should be a number, not {value!r}")
        return self
