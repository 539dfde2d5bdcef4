"""What a bundle remembers of its held-out good scans in one mode, and the verdict rule from it.

Two findings answer the two questions behind a verdict:
  part    does this look like the learned product at all? (global components and what framing
          measures: the object's size, aspect and distance; equal weights, since no wrong parts
          exist at training time)
  defect  is something on it locally wrong? (the segmentation head and the residual peak; weights
          fitted against simulated defects)
Each finding is a weighted sum of components standardised on held-out good scans, standardised
once more on the same scans, so both are in good-scan spreads. A scan's score is the larger of the
two, and one threshold on it is a split conformal order statistic of the held-out good scans'
scores: for a good scan exchangeable with them, P(flagged) <= far (the whole false-alarm budget
covers both findings together; each finding's share is what the good scans show, recorded).

Pure numbers, no networks: `detect.calibrate` fits it after training, `detect.detector` applies it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np

# The score's components, by name: keys of a calibration's mean and spread, fields of a record.
Component = Literal["colour", "depth", "feature", "critic", "peak", "search", "head", "size", "aspect", "distance"]
COLOUR, DEPTH, FEATURE, CRITIC, PEAK, SEARCH, HEAD, SIZE, ASPECT, DISTANCE = get_args(Component)
RESIDUAL_COMPONENTS: tuple[Component, ...] = (COLOUR, DEPTH, FEATURE, CRITIC, PEAK, SEARCH)  # of a reconstruction
FRAME_COMPONENTS: tuple[Component, ...] = (SIZE, ASPECT, DISTANCE)  # of the object's silhouette: off either way

FindingName = Literal["part", "defect"]
PART, DEFECT = get_args(FindingName)
FINDING_COMPONENTS: dict[FindingName, tuple[Component, ...]] = {
    PART: (COLOUR, DEPTH, FEATURE, CRITIC, SEARCH, *FRAME_COMPONENTS),
    DEFECT: (HEAD, PEAK),
}


@dataclass
class Finding:
    """One finding: weights over standardised components, and its weighted sum's own good-scan
    mean and spread (so a finding's score is in good-scan spreads, like the other finding's)."""

    weights: dict[Component, float]
    origin: str = ""
    mean: float = 0.0
    std: float = 1.0

    def to_dict(self) -> dict:
        return {"weights": self.weights, "origin": self.origin, "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, d: dict) -> Finding:
        return cls(d["weights"], d.get("origin", ""), d["mean"], d["std"])


@dataclass
class Calibration:
    """Component statistics of held-out good scans, the findings built on them, the good scans'
    scores and the threshold set from them."""

    mean: dict[Component, float]
    std: dict[Component, float]
    findings: dict[FindingName, Finding]
    good_scores: list[float] = field(default_factory=list)
    far: float = 0.01
    threshold: float = float("inf")

    @classmethod
    def fit(
        cls, good: dict[str, np.ndarray], weights: dict[FindingName, tuple[dict[str, float], str]], far: float = 0.01
    ) -> Calibration:
        """Standardise on good scans only, then each finding, then the threshold for `far`.
        A component with no finite value on the good scans (no depth: no silhouette) weighs 0."""
        mean, std = {}, {}
        for k, v in good.items():
            finite = np.asarray(v, dtype=np.float64)[np.isfinite(v)]
            mean[k] = float(finite.mean()) if finite.size else 0.0
            std[k] = float(max(finite.std(), 1e-8)) if finite.size else 1.0
        findings = {
            name: Finding({k: (w if np.isfinite(good[k]).any() else 0.0) for k, w in ws.items()}, origin)
            for name, (ws, origin) in weights.items()
        }
        calibration = cls(mean, std, findings, far=far)
        contributions, n = calibration.contributions(good), len(next(iter(good.values())))
        for name, finding in findings.items():
            raw = calibration._weighted_sum(name, contributions, n)
            finding.mean, finding.std = float(raw.mean()), float(max(raw.std(), 1e-8))
        calibration.good_scores = calibration.combine(good).tolist()
        calibration.threshold = conformal_threshold(np.array(calibration.good_scores), far)
        return calibration

    @property
    def supported_far(self) -> float:
        """The smallest false-alarm rate the held-out good scans can promise: 1 / (n + 1)."""
        return 1 / (len(self.good_scores) + 1)

    def contributions(self, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """What each weighted component adds to its finding: weight x (value - good mean) / good
        spread (its size either way for the silhouette), so 1 means one good-scan spread above
        the average good scan; 0 where the value is missing."""
        out = {}
        for finding in self.findings.values():
            for name, weight in finding.weights.items():
                if not weight:
                    continue
                z = (np.asarray(values[name], dtype=np.float64) - self.mean[name]) / self.std[name]
                z = np.abs(z) if name in FRAME_COMPONENTS else z
                out[name] = weight * np.nan_to_num(z, nan=0.0)
        return out

    def _weighted_sum(self, name: FindingName, contributions: dict[str, np.ndarray], n: int) -> np.ndarray:
        weighted = [contributions[k] for k in self.findings[name].weights if k in contributions]
        return np.asarray(sum(weighted, np.zeros(n)), dtype=np.float64)

    def finding_scores(self, values: dict[str, np.ndarray]) -> dict[FindingName, np.ndarray]:
        """Each finding's score per scan, in good-scan spreads above the average good scan."""
        contributions, n = self.contributions(values), len(next(iter(values.values())))
        return {
            name: (self._weighted_sum(name, contributions, n) - f.mean) / f.std for name, f in self.findings.items()
        }

    def leading(self, contributions: dict[str, float], top: int = 2) -> dict[FindingName, list[str]]:
        """Per finding, the components that raised it most (one scan's contributions)."""
        return {
            name: sorted(
                (k for k in finding.weights if contributions.get(k, 0.0) > 0), key=lambda k: -contributions[k]
            )[:top]
            for name, finding in self.findings.items()
        }

    def combine(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """One score per scan: the larger finding."""
        return np.max(np.stack(list(self.finding_scores(values).values())), axis=0)

    def with_far(self, far: float) -> Calibration:
        threshold = conformal_threshold(np.array(self.good_scores), far)
        return Calibration(self.mean, self.std, self.findings, self.good_scores, far, threshold)

    def to_dict(self) -> dict:
        return {
            "mean": self.mean,
            "std": self.std,
            "findings": {name: f.to_dict() for name, f in self.findings.items()},
            "far": self.far,
            "threshold": self.threshold,
            "threshold_rule": THRESHOLD_RULE,
            "good_scans": len(self.good_scores),
            "supported_far": self.supported_far,
            "good_scores": self.good_scores,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        findings = {name: Finding.from_dict(f) for name, f in d["findings"].items()}
        return cls(d["mean"], d["std"], findings, d["good_scores"], d["far"], d["threshold"])


THRESHOLD_RULE = (
    "split conformal: just above the ceil((n + 1)(1 - far))-th smallest of n held-out good scans' "
    "scores, so a new good scan exchangeable with them is flagged with probability at most far"
)


def conformal_threshold(good_scores: np.ndarray, far: float) -> float:
    """The threshold that promises at most `far` false alarms, from n held-out good scores.

    Split conformal: flag above the k-th smallest good score, k = ceil((n + 1)(1 - far)); then
    P(a new good scan is flagged) <= (n + 1 - k) / (n + 1) <= far. When far < 1 / (n + 1), k would
    exceed n: the threshold sits just above the highest good score, which promises 1 / (n + 1)
    (train and detect say so).
    """
    if not 0 < far < 1:
        raise ValueError("false-alarm rate must be in (0, 1)")
    scores = np.sort(np.asarray(good_scores, dtype=np.float64))
    if scores.size == 0:
        raise ValueError("no good scans to calibrate on")
    k = min(math.ceil((scores.size + 1) * (1 - far) - 1e-9), scores.size)
    return float(np.nextafter(scores[k - 1], np.inf))


def far_warning(calibration: Calibration, far: float) -> str | None:
    """One line when `far` asks for less than the held-out good scans can promise; None otherwise."""
    if far >= calibration.supported_far:
        return None
    n = len(calibration.good_scores)
    return (
        f"--far {far:.2%} is below the {calibration.supported_far:.2%} that {n} held-out good scans can "
        f"promise; the threshold promises {calibration.supported_far:.2%} (hold out more good scans: "
        f"about {math.ceil(1 / far) - 1} are needed)"
    )
