"""The Kinect bundles shipped in models/kinect/ load from a fresh clone and score scans."""

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from anomaly_gan.bundle.meta import read_meta
from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.cli import app
from anomaly_gan.detect.detector import Detector
from anomaly_gan.detect.judge import DetectOptions
from tests.conftest import make_scan, saved_records, write_class

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "kinect"
CLASSES = ("rectangle", "cylinder", "sphere")


@pytest.mark.parametrize("shape", CLASSES)
def test_a_shipped_bundle_is_current_and_holds_out_enough_scans_for_its_promise(shape: str) -> None:
    meta = read_meta(SHIPPED / f"{shape}-gan")  # of this version's format: older ones stop here
    assert meta.name == shape and meta.objective == "gan"
    for mode in ("fast", "refine"):
        calibration = meta.calibration[mode]
        assert calibration.supported_far <= calibration.far == 0.01  # n >= 99 held-out good scans
        assert set(calibration.findings) == {"part", "defect"}
    scans = [make_scan(i, shape) for i in range(3)]
    scored = Detector(load_bundle(SHIPPED / f"{shape}-gan"), DetectOptions("fast"), torch.device("cpu")).score(scans)
    assert np.isfinite(scored.scores).all() and set(scored.findings) == {"part", "defect"}


def test_detect_with_the_shipped_models_picks_a_class_per_scan(tmp_path: Path) -> None:
    write_class(tmp_path / "scans", "cylinder", count=4)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["detect", str(tmp_path / "scans" / "cylinder"), "--models", str(SHIPPED), "--out", str(out), "--mode", "fast"],
    )
    assert result.exit_code == 0, result.output
    records = saved_records(out)
    assert len(records) == 4 and all(set(r["scores_by_class"]) == set(CLASSES) for r in records)
    assert all(read_meta(Path(r["model"])).name == r["class"] for r in records)
