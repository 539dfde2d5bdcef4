"""`anomaly-gan retrain-head`: a bundle gets a new head and calibration, its GAN and encoder kept,
and the settings a bundle records read back as the config that trained it."""

import json
import shutil
from pathlib import Path

import torch
from typer.testing import CliRunner

from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.cli import app
from anomaly_gan.train.config import TrainConfig
from tests.conftest import tiny_config

runner = CliRunner()


def test_a_recorded_config_reads_back_as_the_one_that_trained(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, objective="wgan-gp", head_kinds=("dent", "stain"), seed=3)
    recorded = json.loads(json.dumps(config.to_dict()))
    again = TrainConfig.from_dict(recorded | {"a_setting_of_an_older_version": 1})
    assert again == config.__class__(**{**config.__dict__, "objective_settings": again.objective_settings})
    assert again.objective_settings == config.build_objective().settings
    assert json.loads(json.dumps(again.to_dict())) == recorded


def test_retrain_head_writes_a_new_bundle_and_keeps_the_old_one(tiny_bundle: Path, tmp_path: Path) -> None:
    source = tmp_path / "sphere-gan"
    shutil.copytree(tiny_bundle, source)
    before = {p.name: p.read_bytes() for p in source.iterdir() if p.is_file()}
    refused = runner.invoke(app, ["retrain-head", str(source), "--head-steps", "3"])
    assert refused.exit_code == 2 and "--force" in refused.output
    out = tmp_path / "sphere-gan-new"
    result = runner.invoke(
        app, ["retrain-head", str(source), "--out", str(out), "--head-steps", "3", "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    assert {p.name: p.read_bytes() for p in source.iterdir() if p.is_file()} == before
    old, new = load_bundle(source), load_bundle(out)
    assert (out / "generator.pt").read_bytes() == before["generator.pt"]
    assert (out / "segmenter.pt").read_bytes() != before["segmenter.pt"]
    assert new.meta.training.config["head_steps"] == 3 and set(new.meta.calibration) == set(old.meta.calibration)
    x = torch.rand(1, 4, 64, 64) * 2 - 1
    assert not torch.equal(old.segmenter(x, x), new.segmenter(x, x))
    again = runner.invoke(app, ["retrain-head", str(source), "--out", str(out), "--head-steps", "3"])
    assert again.exit_code == 2 and "not empty" in again.output
    inside = runner.invoke(app, ["retrain-head", str(source), "--out", str(source / "new")])
    assert inside.exit_code == 2


def test_recalibrating_in_place_keeps_the_networks(tiny_bundle: Path, tmp_path: Path) -> None:
    source = tmp_path / "sphere-gan"
    shutil.copytree(tiny_bundle, source)
    nets = {p.name: p.read_bytes() for p in source.glob("*.pt")}
    result = runner.invoke(app, ["retrain-head", str(source), "--calibration-only", "--force", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert {p.name: p.read_bytes() for p in source.glob("*.pt")} == nets
    assert not list(tmp_path.glob(".sphere-gan.*"))  # nothing left beside it
    assert (
        abs(
            load_bundle(source).meta.calibration["fast"].threshold
            - load_bundle(tiny_bundle).meta.calibration["fast"].threshold
        )
        < 1e-3
    )


def test_a_format_2_bundle_is_refused_in_one_line_and_upgraded_by_calibrating_again(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    source = tmp_path / "sphere-gan"
    shutil.copytree(tiny_bundle, source)
    meta = json.loads((source / "model.json").read_text())
    meta["format_version"] = 2  # format 2: one fitted score per mode
    meta["calibration"] = {
        mode: {
            "mean": c["mean"],
            "std": c["std"],
            "weights": {"head": 1.0},
            "good_scores": [0.1],
            "far": 0.01,
            "threshold": 1.0,
        }
        for mode, c in meta["calibration"].items()
    }
    (source / "model.json").write_text(json.dumps(meta))
    refused = runner.invoke(app, ["detect", str(tmp_path), "--model", str(source)])
    assert refused.exit_code == 2 and "retrain-head" in refused.output and "--calibration-only" in refused.output
    result = runner.invoke(app, ["retrain-head", str(source), "--calibration-only", "--force", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    upgraded = load_bundle(source).meta.calibration["fast"]
    assert set(upgraded.findings) == {"part", "defect"}
    assert abs(upgraded.threshold - load_bundle(tiny_bundle).meta.calibration["fast"].threshold) < 1e-3
