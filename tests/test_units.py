"""Depth in another unit than the bundle learned is converted; depth far outside the learned range
is refused per scan, in one line, and the rest of the batch is scored."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.data.camera import convert_depth, to_mm
from anomaly_gan.data.writers import write_scan
from anomaly_gan.detect.detector import Detector
from anomaly_gan.detect.judge import DetectOptions
from tests.conftest import make_scan, saved_records
from tests.test_faults import GOOD, detect, good_folder


def test_units_convert_both_ways() -> None:
    depth = np.array([10.0, 100.0, np.nan], np.float32)
    assert np.allclose(convert_depth(convert_depth(depth, "8-bit", "mm"), "mm", "8-bit"), depth, equal_nan=True)
    assert np.allclose(convert_depth(to_mm(depth, "8-bit"), "mm", "m") * 1000, to_mm(depth, "8-bit"), equal_nan=True)


def test_a_scan_in_millimetres_scores_as_its_8_bit_original(tiny_bundle: Path) -> None:
    detector = Detector(load_bundle(tiny_bundle), DetectOptions("fast"), torch.device("cpu"))
    originals = [make_scan(i, seed=4) for i in range(3)]
    in_mm = [replace(s, depth=to_mm(s.depth, "8-bit"), depth_unit="mm") for s in originals]
    assert all(detector.refuses(s) is None for s in in_mm)
    np.testing.assert_allclose(detector.score(in_mm).scores, detector.score(originals).scores, atol=1e-4)


def test_depth_far_outside_the_learned_range_is_refused_per_scan(tiny_bundle: Path, tmp_path: Path) -> None:
    folder = good_folder(tmp_path / "scans", "npz")
    far = make_scan(9)
    write_scan(replace(far, depth=to_mm(far.depth, "8-bit") * 20, depth_unit="mm"), folder, "npz")
    result = detect(str(folder), "--model", str(tiny_bundle), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    said = " ".join(result.output.split())
    assert "00009.npz" in said and "lies far outside the range" in said
    assert len(saved_records(tmp_path / "o")) == GOOD
