"""What scoring scans gives, and the part of a detector that needs no networks: which scans a
bundle can score, how the components become findings, one score and a verdict.

`Judge` holds a bundle's model.json, calibration and threshold; a runtime subclass computes the
components from the framed scans (`detect.detector.Detector` with the TorchScript networks,
`detect.onnx_runtime.OnnxDetector` with onnxruntime). No torch here: the ONNX path and the
results writer run without it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from anomaly_gan.bundle.calibration import ASPECT, DISTANCE, PEAK, SIZE, Calibration, FindingName, far_warning
from anomaly_gan.bundle.meta import MODES, BundleError, BundleMeta, InvertSettings
from anomaly_gan.data.camera import convert_depth, to_mm
from anomaly_gan.data.channels import Channels, channels_of, lacking
from anomaly_gan.data.framing import NO_SILHOUETTE, CropBox, silhouette, uncrop
from anomaly_gan.data.scan import Scan
from anomaly_gan.data.tensor import DepthScale, framed_arrays


@dataclass(frozen=True)
class DetectOptions:
    mode: str | None = None  # None: the bundle's default mode
    batch_size: int = 64
    threshold: float | None = None  # a raw score; overrides the calibrated one
    far: float | None = None  # re-derive the threshold for this false-alarm rate
    seed: int = 0  # with each scan's id, seeds its random restarts
    invert: InvertSettings | None = None  # override the bundle's inversion settings (benchmarks)


@dataclass
class Scored:
    values: dict[str, np.ndarray]  # component -> (N,)
    maps: np.ndarray  # (N, 3, S, S): combined, colour, depth (detect.components)
    recon: np.ndarray  # (N, 4, H, W) reconstructions in [-1, 1]; unseen channels are the scan's

    @staticmethod
    def concat(parts: list[Scored]) -> Scored:
        return Scored(
            {k: np.concatenate([p.values[k] for p in parts]) for k in parts[0].values},
            np.concatenate([p.maps for p in parts]),
            np.concatenate([p.recon for p in parts]),
        )


@dataclass
class ScanScores:
    """Scoring a list of scans: the network inputs, components/maps/reconstructions, each
    finding's score, one score and one verdict per scan."""

    x: np.ndarray  # (N, 4, S, S) float32, in the bundle's frame (all 4 channels, data.channels)
    boxes: list[CropBox]  # where each scan's frame lies in the scan
    scored: Scored  # its values hold the silhouette components too
    findings: dict[FindingName, np.ndarray]  # finding -> (N,) its score
    scores: np.ndarray  # (N,) the larger finding
    anomalous: np.ndarray  # (N,) bool: score >= threshold
    contributions: dict[str, np.ndarray]  # component -> (N,) what it added to its finding

    def part(self, start: int, stop: int) -> ScanScores:
        """Scans start..stop of this result."""
        values = {k: v[start:stop] for k, v in self.scored.values.items()}
        scored = Scored(values, self.scored.maps[start:stop], self.scored.recon[start:stop])
        return ScanScores(
            self.x[start:stop],
            self.boxes[start:stop],
            scored,
            {k: v[start:stop] for k, v in self.findings.items()},
            self.scores[start:stop],
            self.anomalous[start:stop],
            {k: v[start:stop] for k, v in self.contributions.items()},
        )

    def scan_maps(self, i: int, shape: tuple[int, int]) -> np.ndarray:
        """(3, H, W) float32 maps (combined, colour, depth) of scan i in its own frame."""
        return uncrop(self.scored.maps[i], self.boxes[i], shape)


class Judge:
    """A bundle's calibration and threshold in force, and what it refuses; subclasses compute the
    components (`_components`) with their runtime."""

    runtime = ""

    def __init__(self, path: Path, meta: BundleMeta, options: DetectOptions) -> None:
        mode = options.mode or meta.default_mode
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
        self.path, self.meta, self.options, self.mode = path, meta, options, mode
        if mode not in meta.calibration:
            raise BundleError(f"{path}: no calibration for mode {mode!r} (it has {', '.join(meta.calibration)})")
        calibration = meta.calibration[mode]
        if options.far is not None:
            calibration = calibration.with_far(options.far)
        self.calibration: Calibration = calibration
        self.warning = far_warning(calibration, calibration.far) if options.threshold is None else None
        if options.threshold is not None:
            self.threshold = options.threshold
            self.threshold_origin = "set with --threshold"
        else:
            self.threshold = calibration.threshold
            self.threshold_origin = threshold_origin(calibration, mode)

    @property
    def label(self) -> str:
        return self.meta.label

    @property
    def map_scales(self) -> tuple[float, float, float]:
        """Levels drawn at full heat for the combined, colour and depth maps: a probability of 1
        for the head's map, else well above the residual peak of good scans."""
        residual = self.calibration.mean[PEAK] + 4 * self.calibration.std[PEAK]
        return (1.0 if self.meta.segmenter is not None else residual, residual, residual)

    def refuses(self, scan: Scan) -> str | None:
        """Why this bundle cannot score the scan (None when it can): a channel it learned is
        missing, colour given to a bundle that learned grayscale images, or depth in another unit
        or far outside the range it learned (such a scan would be flagged for its unit, not a defect)."""
        meta = self.meta
        why = lacking(channels_of(scan.has_colour, scan.has_depth), meta.channels, meta.label)
        if why is None and meta.training.grayscale and not scan.grayscale:
            why = f"is a colour image, but model {meta.label} learned grayscale images"
        if why is None and meta.channels.depth and scan.has_depth:
            why = _depth_mismatch(scan, meta.depth, meta.label)
        return why

    def framed(self, scans: list[Scan]) -> tuple[np.ndarray, list[CropBox]]:
        """The scans as network inputs in the bundle's frame, and where each frame lies."""
        return framed_arrays([in_bundle_unit(s, self.meta.depth) for s in scans], *self._frame_settings)

    @property
    def _frame_settings(self):
        return self.meta.depth, self.meta.network.image_size, self.meta.framing

    def score(self, scans: list[Scan]) -> ScanScores:
        """Score any number of scans (in batches of batch_size)."""
        in_unit = [in_bundle_unit(s, self.meta.depth) for s in scans]
        x, boxes = framed_arrays(in_unit, *self._frame_settings)
        ids = [s.id for s in scans]
        size = self.options.batch_size
        scored = Scored.concat([self._components(x[i : i + size], ids[i : i + size]) for i in range(0, len(x), size)])
        scored.values |= silhouette_components(in_unit, self.meta.channels)
        findings = self.calibration.finding_scores(scored.values)
        scores = np.max(np.stack(list(findings.values())), axis=0)
        contributions = self.calibration.contributions(scored.values)
        return ScanScores(x, boxes, scored, findings, scores, scores >= self.threshold, contributions)

    def _components(self, x: np.ndarray, ids: list[str]) -> Scored:
        """One batch's components, maps and reconstructions."""
        raise NotImplementedError

    def fired(self, s: ScanScores, i: int) -> list[FindingName]:
        """The findings of scan i at or above the threshold."""
        return [name for name, v in s.findings.items() if v[i] >= self.threshold]


def silhouette_components(scans: list[Scan], channels: Channels) -> dict[str, np.ndarray]:
    """(N,) size, aspect and distance of each scan's object; NaN for models that do not see depth
    (the object is found in depth)."""
    shapes = [silhouette(s) if channels.depth else NO_SILHOUETTE for s in scans]
    return {
        SIZE: np.array([s.size for s in shapes]),
        ASPECT: np.array([s.aspect for s in shapes]),
        DISTANCE: np.array([s.distance for s in shapes]),
    }


def threshold_origin(calibration: Calibration, mode: str) -> str:
    """How the threshold was set and what it promises, in one line."""
    n, far, least = len(calibration.good_scores), calibration.far, calibration.supported_far
    if far >= least:
        return f"calibrated for a {far:.1%} false-alarm rate on {n} held-out good scans ({mode} mode, split conformal)"
    return (
        f"calibrated on {n} held-out good scans ({mode} mode, split conformal): at most {least:.1%} false alarms, "
        f"the least {n} scans can promise ({far:.1%} asked)"
    )


def in_bundle_unit(scan: Scan, scale: DepthScale) -> Scan:
    """The scan with its depth in the unit the bundle learned (millimetres and metres convert
    exactly; 8-bit by this tool's convention): a unit mismatch no longer lands clipped on the
    edge of the depth range, flagging every scan."""
    if scale.unit in ("none", scan.depth_unit) or not scan.has_depth:
        return scan
    return replace(scan, depth=convert_depth(scan.depth, scan.depth_unit, scale.unit), depth_unit=scale.unit)


def _depth_mismatch(scan: Scan, scale: DepthScale, label: str) -> str | None:
    """Why the scan's depth does not fit the range the bundle learned (its median more than two
    learned ranges outside it, compared in millimetres); None when it fits."""
    median = float(np.median(to_mm(scan.depth[scan.valid], scan.depth_unit)))
    near, far = (float(v) for v in to_mm(np.array([scale.near, scale.far], np.float32), scale.unit))
    if not near - 2 * (far - near) <= median <= far + 2 * (far - near):
        return (
            f"median depth {median:.0f} mm (given in {scan.depth_unit}) lies far outside the range model {label} "
            f"learned ({near:.0f}-{far:.0f} mm): another camera set-up or depth unit?"
        )
    return None
