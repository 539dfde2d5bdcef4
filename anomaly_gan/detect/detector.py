"""One bundle ready to score scans with its TorchScript networks.

`Detector.score` (from `Judge`) is the library's one call for scoring any number of scans; the
CLI, evaluate and every benchmark use it.
"""

from __future__ import annotations

import numpy as np
import torch

from anomaly_gan.bundle.store import Bundle
from anomaly_gan.detect.judge import DetectOptions, Judge, Scored
from anomaly_gan.detect.scorer import Networks, Scorer


class Detector(Judge):
    runtime = "torch"

    def __init__(self, bundle: Bundle, options: DetectOptions, device: torch.device) -> None:
        super().__init__(bundle.path, bundle.meta, options)
        self.bundle = bundle.to(device)
        nets = Networks.of(bundle)
        self.scorer = Scorer(nets, options.invert or bundle.meta.invert, device, options.batch_size, options.seed)

    def tensor(self, scans) -> tuple[torch.Tensor, list]:
        """The scans as a network input tensor in the bundle's frame, and where each frame lies."""
        x, boxes = self.framed(scans)
        return torch.from_numpy(x), boxes

    def _components(self, x: np.ndarray, ids: list[str]) -> Scored:
        return self.scorer.score_batch(torch.from_numpy(x), self.mode, ids)
