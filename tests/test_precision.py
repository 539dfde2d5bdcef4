"""--precision: bfloat16 where the processor has it, a clean fp32 fallback where it does not, and
bundles that are plain fp32 TorchScript whatever the precision they trained in."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from anomaly_gan import precision
from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.cli import app
from anomaly_gan.data.layouts import find_scans, iter_scans
from anomaly_gan.detect.detector import Detector
from anomaly_gan.detect.judge import DetectOptions
from anomaly_gan.precision import resolve_precision
from anomaly_gan.train.run import train
from tests.conftest import tiny_config, write_class

CPU = torch.device("cpu")


@pytest.fixture
def no_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    """A processor without native bfloat16 (no AVX-512 BF16, no AMX)."""
    monkeypatch.setattr(precision, "bf16_native", lambda device: False)


def test_auto_falls_back_to_fp32_without_native_bf16(no_bf16: None) -> None:
    assert resolve_precision("auto", CPU) == "fp32"
    assert resolve_precision("fp32", CPU) == "fp32"
    with pytest.raises(ValueError, match="no native bfloat16"):
        resolve_precision("bf16", CPU)
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        resolve_precision("fp16", CPU)


def test_auto_takes_bf16_where_native(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "bf16_native", lambda device: True)
    assert resolve_precision("auto", CPU) == "bf16" and resolve_precision("fp32", CPU) == "fp32"


def test_fallback_training_is_recorded_as_fp32(tmp_path: Path, no_bf16: None) -> None:
    write_class(tmp_path / "data")
    bundle = train(tiny_config(tmp_path, steps=3, encoder_steps=2, head_steps=2), lambda *a: None)
    assert bundle.meta.training.config["precision"] == "fp32"


def test_cli_names_a_precision_the_cpu_lacks(tmp_path: Path, no_bf16: None) -> None:
    write_class(tmp_path / "data")
    runner = CliRunner()
    base = [
        "train",
        "--shape",
        "sphere",
        "--data",
        str(tmp_path / "data"),
        "--out",
        str(tmp_path / "m"),
        "--steps",
        "2",
        "--encoder-steps",
        "1",
        "--head-steps",
        "1",
        "--width",
        "4",
        "--device",
        "cpu",
    ]
    result = runner.invoke(app, [*base, "--precision", "bf16"])
    assert result.exit_code == 2 and "no native bfloat16" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, [*base, "--precision", "half"])
    assert result.exit_code == 2 and "--precision half: choose one of auto, bf16, fp32" in result.output


@pytest.mark.skipif(not precision.bf16_native(CPU), reason="this CPU has no native bfloat16")
def test_bf16_bundle_is_fp32_torchscript_that_scores_as_calibrated(tmp_path: Path) -> None:
    """Training rounds to bf16, detection does not: the networks export as fp32, and scored from
    disk with torch.jit.load they give the held-out scans the scores calibration gave them in memory."""
    write_class(tmp_path / "data")
    trained = train(tiny_config(tmp_path, precision="bf16"), lambda *a: None)
    training = trained.meta.training
    assert training.config["precision"] == "bf16"
    for name in ("generator", "critic", "encoder", "segmenter"):
        with warnings.catch_warnings():  # torch's TorchScript deprecation: loaded as a user would
            warnings.simplefilter("ignore", FutureWarning)
            loaded = torch.jit.load(trained.path / f"{name}.pt")
        assert {p.dtype for p in loaded.parameters()} == {torch.float32}
    refs = find_scans(Path(training.data)).refs
    held = [s for r, s in iter_scans(refs) if r.id in set(training.validation_ids)]
    scored = Detector(load_bundle(trained.path), DetectOptions("fast"), CPU).score(held).scores
    good = np.array(trained.meta.calibration["fast"].good_scores)
    assert np.abs(scored - good).max() <= 1e-4 * max(good.std(), 1.0)
