"""One bundle ready to score scans: its networks, its calibration and the threshold in force."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from anomaly_gan.bundle import Bundle
from anomaly_gan.data.scan import Scan
from anomaly_gan.data.tensor import scan_to_array
from anomaly_gan.detect.invert import MODES
from anomaly_gan.detect.score import Calibration
from anomaly_gan.detect.scorer import Networks, Scored, Scorer


@dataclass(frozen=True)
class DetectOptions:
    mode: str = "refine"
    batch_size: int = 64
    threshold: float | None = None  # a raw score; overrides the calibrated one
    far: float | None = None  # re-derive the threshold for this false-alarm rate
    seed: int = 0


class Detector:
    def __init__(self, bundle: Bundle, options: DetectOptions, device: torch.device) -> None:
        if options.mode not in MODES:
            raise ValueError(f"unknown mode {options.mode!r}; choose from {', '.join(MODES)}")
        self.bundle = bundle.to(device)
        self.options = options
        calibration = bundle.calibration(options.mode)
        if options.far is not None:
            calibration = calibration.with_far(options.far)
        self.calibration: Calibration = calibration
        if options.threshold is not None:
            self.threshold = options.threshold
            self.threshold_origin = "set with --threshold"
        else:
            self.threshold = calibration.threshold
            self.threshold_origin = (f"calibrated for a {calibration.far:.1%} false-alarm rate on "
                                     f"{len(calibration.good_scores)} held-out good scans ({options.mode} mode)")
        nets = Networks(bundle.generator, bundle.critic, bundle.encoder, bundle.eager_generator,
                        bundle.net.latent)
        self.scorer = Scorer(nets, bundle.invert_settings, device, options.batch_size, options.seed)

    @property
    def label(self) -> str:
        return self.bundle.label

    @property
    def map_scale(self) -> float:
        """Residual level drawn at full heat: well above the peak of good scans."""
        return self.calibration.mean["peak"] + 4 * self.calibration.std["peak"]

    def tensor(self, scans: list[Scan]) -> torch.Tensor:
        size = self.bundle.net.image_size
        return torch.from_numpy(np.stack([scan_to_array(s, self.bundle.depth_scale, size) for s in scans]))

    def score(self, scans: list[Scan], chunk: int) -> tuple[torch.Tensor, Scored, np.ndarray]:
        """Input tensor, raw components/maps/reconstructions, and the combined scores."""
        x = self.tensor(scans)
        scored = self.scorer.score(x, self.options.mode, chunk)
        return x, scored, self.calibration.combine(scored.values)
