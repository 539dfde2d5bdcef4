"""From a scan and its reconstruction to score components, one image score and a pixel map.

Components (higher = more anomalous):
  colour   mean |x - G(z)| over the colour channels, on the object
  depth    mean |x - G(z)| over the depth channel, on the object
           ("on the object": pixels with depth in the scan or in its reconstruction; a mean over
           the whole frame would mostly measure how big the object is)
  feature  mean squared critic-feature residual (f-AnoGAN's kappa term)
  critic   minus the critic's realness score
  peak     99th percentile of the smoothed anomaly map (catches small local defects)
  search   the inversion's own final loss (seed mode: the publication's score)
Each is standardised with the mean and spread of the bundle's held-out good scans, then summed
with the bundle's weights. The weights are fitted at calibration time on those held-out good scans
against defect-injected copies of them (never on test data); seed mode keeps the publication's score.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

OBJECT_LEVEL = -0.9  # depth channel above this: measured depth (background and holes sit at -1)
COMPONENTS = ("colour", "depth", "feature", "critic", "peak", "search")
EQUAL_WEIGHTS = {name: 1.0 for name in COMPONENTS}  # fallback when no weight can be fitted
SEED_WEIGHTS = {"search": 1.0}  # seed mode scores exactly as the publication did


def anomaly_map(x: torch.Tensor, recon: torch.Tensor, depth_weight: float = 1.0) -> torch.Tensor:
    """(B, H, W): colour and depth residual per pixel, lightly smoothed (3x3 Gaussian)."""
    residual = (x - recon).abs()
    raw = (residual[:, :3].mean(1) + depth_weight * residual[:, 3]) / (1 + depth_weight)
    kernel = torch.tensor([1.0, 2.0, 1.0], device=x.device)
    kernel = (kernel[:, None] * kernel[None, :] / 16).view(1, 1, 3, 3)
    return F.conv2d(raw[:, None], kernel, padding=1)[:, 0]


def components(x: torch.Tensor, recon: torch.Tensor, critic, search_loss: torch.Tensor
               ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-scan components (each (B,)) and the anomaly maps (B, H, W)."""
    with torch.no_grad():
        score_x, feat_x = critic(x)
        _, feat_r = critic(recon)
        residual = (x - recon).abs()
        maps = anomaly_map(x, recon)
        on_object = ((x[:, 3] > OBJECT_LEVEL) | (recon[:, 3] > OBJECT_LEVEL)).float()
        area = on_object.flatten(1).sum(1).clamp(min=1.0)
        values = {
            "colour": (residual[:, :3].mean(1) * on_object).flatten(1).sum(1) / area,
            "depth": (residual[:, 3] * on_object).flatten(1).sum(1) / area,
            "feature": ((feat_x - feat_r) ** 2).mean(1),
            "critic": -score_x,
            "peak": torch.quantile(maps.flatten(1), 0.99, dim=1),
            "search": search_loss,
        }
    return values, maps


@dataclass
class Calibration:
    """What held-out good scans looked like for one inversion mode, and the threshold from it."""

    mean: dict[str, float]
    std: dict[str, float]
    weights: dict[str, float]
    good_scores: list[float] = field(default_factory=list)
    far: float = 0.01
    threshold: float = float("inf")

    @classmethod
    def fit(cls, good: dict[str, np.ndarray], weights: dict[str, float], far: float = 0.01) -> Calibration:
        """Standardise on good scans only, then set the threshold for the false-alarm rate `far`."""
        mean = {k: float(np.mean(v)) for k, v in good.items()}
        std = {k: float(max(np.std(v), 1e-8)) for k, v in good.items()}
        calibration = cls(mean, std, dict(weights), far=far)
        calibration.good_scores = calibration.combine(good).tolist()
        calibration.threshold = threshold_for_far(np.array(calibration.good_scores), far)
        return calibration

    def combine(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """One score per scan: the weighted sum of standardised components."""
        total = 0.0
        for name, weight in self.weights.items():
            if weight:
                total = total + weight * (np.asarray(values[name]) - self.mean[name]) / self.std[name]
        return np.asarray(total, dtype=np.float64)

    def with_far(self, far: float) -> Calibration:
        return Calibration(self.mean, self.std, self.weights, self.good_scores, far,
                           threshold_for_far(np.array(self.good_scores), far))

    def to_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std, "weights": self.weights, "far": self.far,
                "threshold": self.threshold, "good_scores": self.good_scores}

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:  # extra keys (weights_origin) are for readers
        return cls(d["mean"], d["std"], d["weights"], d["good_scores"], d["far"], d["threshold"])


def fit_weights(good: dict[str, np.ndarray], defective: dict[str, np.ndarray]) -> dict[str, float]:
    """Non-negative weights separating good scans from defect-injected copies of them.

    Logistic regression on components standardised with the good scans' statistics; negative
    coefficients (a component that would reward anomalies) are dropped. Largest weight = 1.
    """
    from sklearn.linear_model import LogisticRegression

    mean = {k: np.mean(good[k]) for k in COMPONENTS}
    std = {k: max(np.std(good[k]), 1e-8) for k in COMPONENTS}

    def standardise(values: dict[str, np.ndarray]) -> np.ndarray:
        return np.stack([(np.asarray(values[k]) - mean[k]) / std[k] for k in COMPONENTS], axis=1)

    x = np.concatenate([standardise(good), standardise(defective)])
    y = np.r_[np.zeros(len(good[COMPONENTS[0]])), np.ones(len(defective[COMPONENTS[0]]))]
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000).fit(x, y)
    coefficients = np.clip(model.coef_[0], 0, None)
    if coefficients.max() <= 0:
        return dict(EQUAL_WEIGHTS)
    return {k: float(c / coefficients.max()) for k, c in zip(COMPONENTS, coefficients, strict=True)}


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
