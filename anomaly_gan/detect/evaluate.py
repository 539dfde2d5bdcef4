"""`evaluate`: score labelled scans, then measure how well normal and anomalous separate.

It sits above detection and reporting: it runs the detect pipeline, then the report layer's
metrics and figures. Maps and masks stay in memory (nothing is read back from disk).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from sklearn.metrics import roc_auc_score

from anomaly_gan.data.framing import object_region
from anomaly_gan.data.labelled import NORMAL
from anomaly_gan.data.layouts import ScanRef
from anomaly_gan.data.scan import Scan
from anomaly_gan.detect.judge import Judge, ScanScores
from anomaly_gan.detect.pipeline import detect, models_used
from anomaly_gan.fsutil import atomic_write_bytes, atomic_write_json
from anomaly_gan.report import plots
from anomaly_gan.report.metrics import au_pro, auroc_by_label, image_metrics, pixel_auroc
from anomaly_gan.report.records import Output, Results, read_records


class PixelTruth:
    """Per scored scan with known pixels (good scans, or defects with a mask), in the scan's own
    frame: the ground-truth mask, the combined map and the object region (dilated) that the
    object-pixel metrics are restricted to."""

    def __init__(self) -> None:
        self.masks, self.maps, self.objects = [], [], []

    def __call__(self, scans: list[Scan], scored: ScanScores) -> None:
        for i, scan in enumerate(scans):
            if scan.label == NORMAL:
                mask = np.zeros(scan.shape, bool)
            elif scan.gt is not None:
                mask = scan.gt
            else:
                continue
            self.masks.append(mask)
            self.maps.append(scored.scan_maps(i, scan.shape)[0].copy())  # not a view holding all three maps
            self.objects.append(object_pixels(scan))

    def metrics(self) -> dict[str, float | None]:
        """Pixel AUROC and AU-PRO over the whole frame and over object pixels (None without any
        defect mask)."""
        masks, maps, objects = self.masks, self.maps, self.objects
        if not any(m.any() for m in masks):
            return dict.fromkeys(("pixel_auroc", "au_pro_0.3", "object_pixel_auroc", "object_au_pro_0.3"))
        return {
            "pixel_auroc": pixel_auroc(masks, maps),
            "au_pro_0.3": au_pro(masks, maps),
            "object_pixel_auroc": pixel_auroc(masks, maps, objects),
            "object_au_pro_0.3": au_pro(masks, maps, within=objects),
        }


def finding_metrics(labels: np.ndarray, found: list[tuple[dict[str, float], list[str]]]) -> dict[str, dict]:
    """Per finding: its own AUROC, and the share of anomalous (tpr) and normal (fpr) scans it fired on."""
    out = {}
    for name in found[0][0] if found else []:
        score = np.array([findings[name] for findings, _ in found])
        fired = np.array([name in f for _, f in found])
        both = 0 < labels.sum() < len(labels)
        out[name] = {
            "auroc": float(roc_auc_score(labels, score)) if both else None,
            "tpr": float(fired[labels == 1].mean()) if labels.any() else None,
            "fpr": float(fired[labels == 0].mean()) if (labels == 0).any() else None,
        }
    return out


def object_pixels(scan: Scan) -> np.ndarray:
    """The object (largest region of valid depth; the whole frame without depth) and its defect
    mask, dilated by 2 pixels."""
    region = object_region(scan.valid) if scan.has_depth else np.ones(scan.shape, bool)
    region |= scan.gt if scan.gt is not None else False
    return cv2.dilate(region.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)


def evaluate(
    refs: list[ScanRef], detector: Judge, out: Path, output: Output, on_batch: Callable[[int], None] = lambda n: None
) -> tuple[dict, Results]:
    """Writes records, panels, figures and metrics.json into `out`; returns the metrics."""
    truth = PixelTruth()
    results = detect(
        refs, [detector], out, output, Results(models_used([detector]), detector.mode), on_batch, on_scored=truth
    )
    found = [(r.label, r.score, r.findings, r.fired) for r in read_records(out)]
    labels = np.array([label != NORMAL for label, *_ in found], int)
    scores = np.array([score for _, score, *_ in found])
    metrics = image_metrics(labels, scores, detector.threshold)
    metrics["auroc_by_label"] = auroc_by_label([label for label, *_ in found], scores, NORMAL)
    metrics["findings"] = finding_metrics(labels, [(findings, fired) for *_, findings, fired in found])
    metrics["promised_far"] = max(detector.calibration.far, detector.calibration.supported_far)
    metrics.update(truth.metrics())
    metrics["model"] = str(detector.path)
    metrics["mode"] = detector.mode
    metrics["threshold_origin"] = detector.threshold_origin
    metrics["unreadable"] = results.unreadable
    normal, anomalous = scores[labels == 0], scores[labels == 1]
    figures = {
        "roc.png": plots.roc_figure({detector.label: metrics}),
        "pr.png": plots.pr_figure(metrics),
        "histogram.png": plots.histogram_figure(normal, anomalous, detector.threshold),
    }
    if len(found) > 1:
        figures["threshold_sweep.png"] = plots.threshold_sweep_figure(labels, scores, detector.threshold)
    for name, data in figures.items():
        atomic_write_bytes(out / name, data)
    atomic_write_json(out / "metrics.json", metrics)
    return metrics, results
