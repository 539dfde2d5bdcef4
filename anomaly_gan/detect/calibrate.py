"""Calibrate a freshly trained model: score held-out good scans (and copies of them with simulated
defects) in every mode, weigh the components of each finding, keep the good scans' statistics, set
the threshold.

The part finding weighs its components equally: no wrong parts exist at training time to fit
weights on, and weights fitted on local defects lean on the local components (which is why one
fitted score let a box pass on a ball line). The defect finding's weights are fitted against the
simulated defects.

Training calls `calibrate`; the result is stored in the bundle as one Calibration per mode.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from anomaly_gan.bundle.calibration import DEFECT, FINDING_COMPONENTS, PART, SEARCH, Calibration
from anomaly_gan.bundle.meta import MODES
from anomaly_gan.detect.scorer import Scorer

SEED_FINDINGS = {PART: ({SEARCH: 1.0}, "the publication's score (mean final search loss)")}  # seed mode: as published
SEED_SCANS = 40  # held-out good scans the slow seed mode is calibrated on


def fit_weights(good: dict[str, np.ndarray], defective: dict[str, np.ndarray]) -> dict[str, float]:
    """Non-negative weights separating good scans from defect-injected copies of them.

    Logistic regression on components standardised with the good scans' statistics; negative
    coefficients (a component that would reward anomalies) are dropped. Largest weight = 1; equal
    weights when no component separates.
    """
    from sklearn.linear_model import LogisticRegression

    names = list(good)
    mean = {k: np.mean(good[k]) for k in names}
    std = {k: max(np.std(good[k]), 1e-8) for k in names}

    def standardise(values: dict[str, np.ndarray]) -> np.ndarray:
        return np.stack([(np.asarray(values[k]) - mean[k]) / std[k] for k in names], axis=1)

    x = np.concatenate([standardise(good), standardise(defective)])
    y = np.r_[np.zeros(len(good[names[0]])), np.ones(len(defective[names[0]]))]
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000).fit(x, y)
    coefficients = np.clip(model.coef_[0], 0, None)
    if coefficients.max() <= 0:
        return {k: 1.0 for k in names}
    return {k: float(c / coefficients.max()) for k, c in zip(names, coefficients, strict=True)}


def finding_weights(
    good: dict[str, np.ndarray], defective: dict[str, np.ndarray], good_count: int, defective_count: int
) -> dict[str, tuple[dict[str, float], str]]:
    """Each finding's weights over the components this bundle measures, and where they came from."""
    part = {k: 1.0 for k in FINDING_COMPONENTS[PART] if k in good}
    local = [k for k in FINDING_COMPONENTS[DEFECT] if k in good]
    fitted = fit_weights({k: good[k] for k in local}, {k: defective[k] for k in local})
    return {
        PART: (part, "equal weights (no wrong parts to fit on)"),
        DEFECT: (
            fitted,
            f"fitted on {good_count} held-out good scans vs {defective_count} copies of them with simulated defects",
        ),
    }


def calibrate(
    scorer: Scorer,
    good: torch.Tensor,
    good_ids: Sequence[str],
    good_silhouettes: dict[str, np.ndarray],
    defective: torch.Tensor,
    defective_ids: Sequence[str],
    far: float,
    on_mode: Callable[[str], None] = lambda mode: None,
    modes: Sequence[str] = MODES,
) -> dict[str, Calibration]:
    """One Calibration per mode from held-out good scans (their silhouette components measured on
    the scans themselves) and defective copies of them (simulated defects: never the evaluation
    injector's)."""
    result = {}
    for mode in modes:
        if mode == "seed":  # ~1.5 scans/s on 2 cores: a spread-out subset, so it never dominates training
            keep = np.unique(np.linspace(0, len(good) - 1, min(len(good), SEED_SCANS)).round().astype(int))
            good_values = scorer.score(good[keep], mode, [good_ids[i] for i in keep]).values
            weights = SEED_FINDINGS
        else:
            good_values = scorer.score(good, mode, good_ids).values | good_silhouettes
            defective_values = scorer.score(defective, mode, defective_ids).values
            weights = finding_weights(good_values, defective_values, len(good), len(defective))
        result[mode] = Calibration.fit(good_values, weights, far)
        on_mode(mode)
    return result
