"""`export --onnx` and the torch-free fast-mode scorer (`--runtime onnx`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from anomaly_gan.bundle.meta import ONNX_SCORER, BundleError
from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.cli import app
from anomaly_gan.detect.detector import Detector
from anomaly_gan.detect.judge import DetectOptions
from anomaly_gan.detect.onnx_runtime import OnnxDetector
from tests.conftest import make_scan, write_class


@pytest.fixture(scope="module")
def exported(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("onnx") / "sphere-gan"
    shutil.copytree(tiny_bundle, folder)
    result = CliRunner().invoke(app, ["export", "--onnx", str(folder)])
    assert result.exit_code == 0, result.output
    assert (folder / ONNX_SCORER).is_file()
    return folder


def test_onnx_scores_equal_the_torch_path(exported: Path) -> None:
    scans = [make_scan(i, seed=5) for i in range(12)]
    torch_path = Detector(load_bundle(exported), DetectOptions("fast", batch_size=5), torch.device("cpu"))
    onnx_path = OnnxDetector(exported, DetectOptions(batch_size=5))
    a, b = torch_path.score(scans), onnx_path.score(scans)
    spread = float(np.std(torch_path.calibration.good_scores))
    assert np.abs(a.scores - b.scores).max() <= 1e-4 * spread
    for name in a.findings:
        assert np.abs(a.findings[name] - b.findings[name]).max() <= 1e-4 * spread
    assert np.abs(a.scored.maps - b.scored.maps).max() < 1e-3
    assert (a.anomalous == b.anomalous).all()


def test_detect_with_the_onnx_runtime_never_imports_torch(exported: Path, tmp_path: Path) -> None:
    write_class(tmp_path / "scans", count=6, seed=3)
    code = (
        "import sys\n"
        "from anomaly_gan.cli import app\n"
        f"sys.argv = ['anomaly-gan', 'detect', {str(tmp_path / 'scans')!r}, '--model', {str(exported)!r},"
        f" '--runtime', 'onnx', '--out', {str(tmp_path / 'out')!r}]\n"
        "try:\n    app()\nexcept SystemExit as e:\n    code = e.code\n"
        "print('torch' in sys.modules, code)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().splitlines()[-1] == "False 0", done.stdout + done.stderr
    assert (tmp_path / "out" / "report.html").is_file()


def test_a_scorer_from_other_networks_or_none_is_refused_in_one_line(exported: Path, tmp_path: Path) -> None:
    stale = tmp_path / "stale"
    shutil.copytree(exported, stale)
    (stale / "critic.pt").write_bytes((stale / "critic.pt").read_bytes() + b"\0")
    with pytest.raises(BundleError, match="exported from other networks.*export --onnx"):
        OnnxDetector(stale, DetectOptions())
    (stale / ONNX_SCORER).unlink()
    with pytest.raises(BundleError, match="scorer.onnx: missing; make it with `anomaly-gan export --onnx"):
        OnnxDetector(stale, DetectOptions())
    (stale / ONNX_SCORER).write_bytes(b"not onnx")
    with pytest.raises(BundleError, match="not a loadable ONNX model") as e:
        OnnxDetector(stale, DetectOptions())
    assert "\n" not in str(e.value)


def test_onnx_runtime_refuses_other_modes(exported: Path, tmp_path: Path) -> None:
    write_class(tmp_path / "scans", count=2, seed=3)
    result = CliRunner().invoke(
        app, ["detect", str(tmp_path / "scans"), "--model", str(exported), "--runtime", "onnx", "--mode", "refine"]
    )
    assert result.exit_code == 2
    assert "fast mode only" in result.output
