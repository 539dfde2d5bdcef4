"""One bundle ready to score scans: its networks, its calibration and the threshold in force.

`Detector.score` is the library's one call for scoring any number of scans; the CLI, evaluate and
every benchmark use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from anomaly_gan.bundle.calibration import Calibration
from anomaly_gan.bundle.meta import MODES, InvertSettings
from anomaly_gan.bundle.store import Bundle
from anomaly_gan.data.scan import Scan
from anomaly_gan.data.tensor import scan_to_array
from anomaly_gan.detect.scorer import Networks, Scored, Scorer


@dataclass(frozen=True)
class DetectOptions:
    mode: str | None = None  # None: the bundle's default mode
    batch_size: int = 64
    threshold: float | None = None  # a raw score; overrides the calibrated one
    far: float | None = None  # re-derive the threshold for this false-alarm rate
    seed: int = 0  # with each scan's id, seeds its random restarts
    invert: InvertSettings | None = None  # override the bundle's inversion settings (benchmarks)


@dataclass
class ScanScores:
    """Scoring a list of scans: the network inputs, components/maps/reconstructions, one score
    and one verdict per scan."""

    x: torch.Tensor  # (N, 4, S, S) on the CPU
    scored: Scored
    scores: np.ndarray  # (N,)
    anomalous: np.ndarray  # (N,) bool: score >= threshold


class Detector:
    def __init__(self, bundle: Bundle, options: DetectOptions, device: torch.device) -> None:
        mode = options.mode or bundle.meta.default_mode
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
        self.bundle = bundle.to(device)
        self.options, self.mode = options, mode
        calibration = bundle.calibration(mode)
        if options.far is not None:
            calibration = calibration.with_far(options.far)
        self.calibration: Calibration = calibration
        if options.threshold is not None:
            self.threshold = options.threshold
            self.threshold_origin = "set with --threshold"
        else:
            self.threshold = calibration.threshold
            self.threshold_origin = (f"calibrated for a {calibration.far:.1%} false-alarm rate on "
                                     f"{len(calibration.good_scores)} held-out good scans ({mode} mode)")
        nets = Networks(bundle.generator, bundle.critic, bundle.encoder, bundle.eager_generator,
                        bundle.meta.network.latent)
        self.scorer = Scorer(nets, options.invert or bundle.meta.invert, device, options.batch_size, options.seed)

    @property
    def label(self) -> str:
        return self.bundle.label

    @property
    def map_scale(self) -> float:
        """Residual level drawn at full heat: well above the peak of good scans."""
        return self.calibration.mean["peak"] + 4 * self.calibration.std["peak"]

    def tensor(self, scans: list[Scan]) -> torch.Tensor:
        size, scale = self.bundle.meta.network.image_size, self.bundle.meta.depth
        return torch.from_numpy(np.stack([scan_to_array(s, scale, size) for s in scans]))

    def score(self, scans: list[Scan]) -> ScanScores:
        """Score any number of scans (in batches of batch_size)."""
        x = self.tensor(scans)
        scored = self.scorer.score(x, self.mode, [s.id for s in scans])
        scores = self.calibration.combine(scored.values)
        return ScanScores(x, scored, scores, scores >= self.threshold)
