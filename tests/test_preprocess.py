from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from anomaly_gan.cli import app
from anomaly_gan.data.camera import Intrinsics
from anomaly_gan.data.layouts import find_scans, load_scan
from anomaly_gan.data.preprocess import PreprocessConfig, object_pixels, preprocess_scan
from anomaly_gan.data.synth_capture import render_capture
from anomaly_gan.data.writers import write_scan

CAMERA = Intrinsics(320, 240, 280.0, 280.0, 159.5, 119.5)


def test_plane_and_clutter_are_removed() -> None:
    config = PreprocessConfig(intrinsics=CAMERA)
    for index, shape in enumerate(("sphere", "rectangle", "cylinder")):
        capture, truth = render_capture(shape, np.random.default_rng(index), "c")
        found = object_pixels(capture, config)
        assert (found & truth).sum() / (found | truth).sum() > 0.85
        assert found.sum() < 0.2 * capture.valid.sum()  # the table is gone


def test_output_is_a_centred_64px_object() -> None:
    capture, _ = render_capture("sphere", np.random.default_rng(7), "c")
    scan = preprocess_scan(capture, PreprocessConfig(intrinsics=CAMERA))
    assert scan.shape == (64, 64)
    ys, xs = np.nonzero(scan.valid)
    assert abs(ys.mean() - 32) < 6 and abs(xs.mean() - 32) < 6
    assert 0.05 < scan.valid.mean() < 0.5
    assert (scan.rgb[~scan.valid] == 0).all()


def test_cli_preprocess_writes_seed_layout(tmp_path: Path) -> None:
    for index in range(3):
        capture, _ = render_capture("cylinder", np.random.default_rng(index), f"f{index}")
        write_scan(capture, tmp_path / "raw", "paired")
    (tmp_path / "raw" / "rgb" / "f9.png").write_bytes(b"broken")
    result = CliRunner().invoke(
        app, ["preprocess", str(tmp_path / "raw"), str(tmp_path / "out"), "--intrinsics", "320,240,280,280,159.5,119.5"]
    )
    assert result.exit_code == 2, result.output  # the broken file is named, the rest written
    assert "f9.png: colour without depth partner" in result.output and "wrote 3 scans" in result.output
    assert "1 skipped" in result.output
    refs = find_scans(tmp_path / "out").refs
    assert {r.layout for r in refs} == {"seed"} and load_scan(refs[0]).depth_unit == "mm"
    again = CliRunner().invoke(app, ["preprocess", str(tmp_path / "raw"), str(tmp_path / "out")])
    assert again.exit_code == 2 and "--force" in again.output
