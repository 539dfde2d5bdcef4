"""What a bundle remembers of its held-out good scans in one mode, and the threshold from it.

Pure numbers, no networks: `detect.calibrate` fits it after training, `detect.detector` applies it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np

# The score's components, by name: keys of a calibration's mean, spread and weights, fields of a
# record. Measured on the reconstruction (the first six) and by the segmentation head.
Component = Literal["colour", "depth", "feature", "critic", "peak", "search", "head"]
COLOUR, DEPTH, FEATURE, CRITIC, PEAK, SEARCH, HEAD = get_args(Component)
RESIDUAL_COMPONENTS: tuple[Component, ...] = (COLOUR, DEPTH, FEATURE, CRITIC, PEAK, SEARCH)


@dataclass
class Calibration:
    """Component statistics of held-out good scans, the weights that combine the components,
    the good scans' combined scores and the threshold set from them."""

    mean: dict[Component, float]
    std: dict[Component, float]
    weights: dict[Component, float]
    weights_origin: str = ""
    good_scores: list[float] = field(default_factory=list)
    far: float = 0.01
    threshold: float = float("inf")

    @classmethod
    def fit(
        cls, good: dict[str, np.ndarray], weights: dict[str, float], far: float = 0.01, weights_origin: str = ""
    ) -> Calibration:
        """Standardise on good scans only, then set the threshold for the false-alarm rate `far`."""
        mean = {k: float(np.mean(v)) for k, v in good.items()}
        std = {k: float(max(np.std(v), 1e-8)) for k, v in good.items()}
        calibration = cls(mean, std, dict(weights), weights_origin, far=far)
        calibration.good_scores = calibration.combine(good).tolist()
        calibration.threshold = threshold_for_far(np.array(calibration.good_scores), far)
        return calibration

    def contributions(self, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """What each weighted component adds to the score: weight x (value - good mean) / good spread,
        so 1 means one good-scan spread above the average good scan."""
        return {
            name: weight * (np.asarray(values[name], dtype=np.float64) - self.mean[name]) / self.std[name]
            for name, weight in self.weights.items()
            if weight
        }

    def combine(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """One score per scan: the weighted sum of standardised components."""
        return total(self.contributions(values))

    def with_far(self, far: float) -> Calibration:
        return Calibration(
            self.mean,
            self.std,
            self.weights,
            self.weights_origin,
            self.good_scores,
            far,
            threshold_for_far(np.array(self.good_scores), far),
        )

    def to_dict(self) -> dict:
        return {
            "mean": self.mean,
            "std": self.std,
            "weights": self.weights,
            "far": self.far,
            "threshold": self.threshold,
            "good_scores": self.good_scores,
            "weights_origin": self.weights_origin,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        return cls(
            d["mean"], d["std"], d["weights"], d.get("weights_origin", ""), d["good_scores"], d["far"], d["threshold"]
        )


def total(contributions: dict[str, np.ndarray]) -> np.ndarray:
    """The score the contributions add up to."""
    return np.asarray(sum(contributions.values(), 0.0), dtype=np.float64)


def threshold_for_far(good_scores: np.ndarray, far: float) -> float:
    """Smallest threshold that flags at most a fraction `far` of the good scans.

    With n good scans the achievable false-alarm rates are k/n; we take the largest k/n <= far.
    When that is 0 (few scans, small far) the threshold sits just above the highest good score.
    """
    if not 0 <= far < 1:
        raise ValueError("false-alarm rate must be in [0, 1)")
    scores = np.sort(np.asarray(good_scores, dtype=np.float64))
    if scores.size == 0:
        raise ValueError("no good scans to calibrate on")
    allowed = int(np.floor(far * scores.size + 1e-9))  # good scans that may score above it
    top = scores[scores.size - 1 - allowed]
    return float(np.nextafter(top, np.inf))
