"""Training end to end on tiny networks: bundle, TorchScript, resume, monitoring, bad inputs."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.cli import app
from anomaly_gan.data.tensor import DepthScale
from anomaly_gan.models.dcgan import Critic, Encoder, Generator
from anomaly_gan.train.data import TrainingError, block_split
from anomaly_gan.train.objective_settings import DEFAULT_SETTINGS, with_switches
from anomaly_gan.train.run import TrainingInterrupted, train
from tests.conftest import cli_train, tiny_config, write_class


def test_bundle_is_complete_and_self_describing(tiny_bundle: Path) -> None:
    names = {p.name for p in tiny_bundle.iterdir()}
    assert {
        "generator.pt",
        "critic.pt",
        "encoder.pt",
        "segmenter.pt",
        "model.json",
        "train_log.jsonl",
        "progress.gif",
        "interpolation.png",
        "plots",
        "samples",
    } <= names
    assert "checkpoint.pt" not in names
    assert {"losses.png", "critic_scores.png", "accuracy.png", "encoder.png", "head.png"} <= {
        p.name for p in (tiny_bundle / "plots").iterdir()
    }
    meta = json.loads((tiny_bundle / "model.json").read_text())
    assert meta["format_version"] == 3 and meta["objective"] == "gan" and meta["network"]["channels"] == 4
    assert meta["framing"] == {"kind": "object", "margin": 0.25, "side": 0}
    assert meta["segmenter"]["widths"] == [8, 16, 32, 64]
    assert set(meta["calibration"]) == {"fast", "refine", "seed"}
    DepthScale(**meta["normalisation"]["depth"])
    log = [json.loads(line) for line in (tiny_bundle / "train_log.jsonl").read_text().splitlines()]
    gan = [r for r in log if r["phase"] == "gan"]
    assert [r["step"] for r in gan] == list(range(1, 13))
    assert {"d_loss", "g_loss", "d_x", "d_g_z", "acc_real", "acc_fake", "lr_g", "seconds"} <= set(gan[0])


def test_every_stage_is_timed_and_counted(tiny_bundle: Path) -> None:
    training = load_bundle(tiny_bundle).meta.training
    assert list(training.stages) == ["data", "gan", "encoder", "head", "calibration", "export"]
    assert all(seconds >= 0 for seconds in training.stages.values()) and training.stages["gan"] > 0
    assert training.minutes == pytest.approx(sum(training.stages.values()) / 60)
    assert training.stages["gan"] >= sum(
        r["seconds"]
        for r in map(json.loads, (tiny_bundle / "train_log.jsonl").read_text().splitlines())
        if r["phase"] == "gan"
    )
    assert len(training.train_ids) == training.train_scans and not set(training.train_ids) & set(
        training.validation_ids
    )


def test_torchscript_loads_without_the_project(tiny_bundle: Path) -> None:
    code = (
        "import sys, torch\n"
        f"g = torch.jit.load({str(tiny_bundle / 'generator.pt')!r})\n"
        f"d = torch.jit.load({str(tiny_bundle / 'critic.pt')!r})\n"
        f"e = torch.jit.load({str(tiny_bundle / 'encoder.pt')!r})\n"
        "x = g(torch.randn(2, 8)); s, f = d(x); z = e(x)\n"
        "assert x.shape == (2, 4, 64, 64) and s.shape == (2,) and z.shape == (2, 8)\n"
        "assert not any(m.startswith('anomaly_gan') for m in sys.modules)\n"
    )
    subprocess.run([sys.executable, "-I", "-c", code], check=True, cwd="/")


def test_traced_and_eager_networks_agree(tiny_bundle: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    net = bundle.meta.network
    z = torch.randn(3, net.latent)
    x = torch.rand(3, 4, 64, 64) * 2 - 1
    for scripted, eager_class, example in (
        (bundle.generator, Generator, z),
        (bundle.critic, Critic, x),
        (bundle.encoder, Encoder, x),
    ):
        eager = eager_class(net)
        eager.load_state_dict(scripted.state_dict())
        eager.eval()
        with torch.no_grad():
            a, b = scripted(example), eager(example)
        for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,), strict=True):
            torch.testing.assert_close(u, v)


@pytest.mark.parametrize("precision", ["fp32", "auto"])  # auto: bf16 where the CPU has it (this project's CI)
def test_resume_continues_bit_for_bit(tmp_path: Path, precision: str) -> None:
    write_class(tmp_path / "data")
    straight = train(tiny_config(tmp_path, out=tmp_path / "a", precision=precision), lambda *a: None).path

    def interrupt_at_7(phase: str, total: int, row: dict) -> None:
        if phase == "gan" and row["step"] == 7:
            raise KeyboardInterrupt

    config = tiny_config(tmp_path, out=tmp_path / "b", precision=precision)
    with pytest.raises(TrainingInterrupted):
        train(config, interrupt_at_7)
    assert (config.bundle_dir / "checkpoint.pt").exists()
    with pytest.raises(TrainingError, match="--resume"):
        train(config, lambda *a: None)
    resumed = train(config, lambda *a: None, resume=True).path

    def losses(folder: Path) -> list:
        rows = [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]
        return [(r["phase"], r["step"], r.get("d_loss"), r.get("g_loss"), r.get("e_loss")) for r in rows]

    assert losses(straight) == losses(resumed)
    a, b = load_bundle(straight), load_bundle(resumed)
    for key, value in a.generator.state_dict().items():
        torch.testing.assert_close(value, b.generator.state_dict()[key], rtol=0, atol=0)


def test_a_run_begun_before_a_switch_existed_resumes_with_its_neutral_value(tmp_path: Path) -> None:
    write_class(tmp_path / "data")
    config = tiny_config(tmp_path, objective="wgan-gp", steps=4, encoder_steps=2)

    def interrupt_at_2(phase: str, total: int, row: dict) -> None:
        if phase == "gan" and row["step"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        train(config, interrupt_at_2)
    checkpoint = config.bundle_dir / "checkpoint.pt"
    payload = torch.load(checkpoint, weights_only=True)
    del payload["extra"]["config"]["objective_settings"]["gp_every"]  # as an older version recorded it
    torch.save(payload, checkpoint)
    if DEFAULT_SETTINGS["wgan-gp"].gp_every != 1:  # the run penalised every update: so must its resumption
        with pytest.raises(TrainingError, match="objective_settings"):
            train(config, lambda *a: None, resume=True)
    old = replace(config, objective_settings=with_switches("wgan-gp", gp_every=1))
    assert train(old, lambda *a: None, resume=True).path == config.bundle_dir


def test_every_objective_trains_a_bundle(tmp_path: Path) -> None:
    write_class(tmp_path / "data")
    for objective in ("lsgan", "wgan-clip", "wgan-gp"):
        config = tiny_config(tmp_path, objective=objective, steps=3, encoder_steps=2)
        folder = train(config, lambda *a: None).path
        assert folder.name == f"sphere-{objective}"
        log = (folder / "train_log.jsonl").read_text()
        assert ("wasserstein" in log) == objective.startswith("wgan")
        assert ("gradient_penalty" in log) == (objective == "wgan-gp")


def test_block_split_holds_out_consecutive_blocks() -> None:
    train_idx, val_idx = block_split(100, block=10, every=4)
    assert list(val_idx) == list(range(20, 30)) + list(range(60, 70))
    assert set(train_idx).isdisjoint(val_idx) and len(train_idx) + len(val_idx) == 100
    assert list(block_split(12, block=10, every=8)[1]) == [10, 11]  # at least one block
    with pytest.raises(TrainingError):
        block_split(5, block=10, every=8)


runner = CliRunner()


def test_cli_bad_inputs(tmp_path: Path) -> None:
    (tmp_path / "data" / "sphere").mkdir(parents=True)
    result = cli_train(tmp_path)
    assert result.exit_code == 2 and "no scans found" in result.output
    write_class(tmp_path / "data", count=5)
    result = cli_train(tmp_path)
    assert result.exit_code == 2 and "5 readable good scans; at least 32" in result.output
    assert cli_train(tmp_path, "--objective", "dcgan").output.count("unknown objective 'dcgan'") == 1
    result = cli_train(tmp_path, "--device", "cuda")
    if not torch.cuda.is_available():
        assert result.exit_code == 2 and "no CUDA device" in result.output
    result = runner.invoke(app, ["train", "--shape", "teapot", "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "no built-in synthetic scans for class 'teapot'" in result.output
    assert "Traceback" not in result.output


def test_cli_refuses_mixed_sizes_and_existing_bundle(tmp_path: Path) -> None:
    from anomaly_gan.data.writers import write_scan
    from tests.conftest import mm_scan

    write_class(tmp_path / "data", count=40)
    write_scan(replace(mm_scan("big", size=96), depth_unit="8-bit"), tmp_path / "data" / "sphere", "seed")
    result = cli_train(tmp_path)
    assert result.exit_code == 2 and "mixed image sizes 64x64 (40), 96x96 (1)" in result.output
    (tmp_path / "data" / "sphere" / "RGB_Final" / "big.png").unlink()
    (tmp_path / "data" / "sphere" / "Depth_Final" / "big.png").unlink()
    assert cli_train(tmp_path).exit_code == 0
    result = cli_train(tmp_path)
    assert result.exit_code == 2 and "holds a trained bundle; use --force" in result.output
    assert cli_train(tmp_path, "--force").exit_code == 0


@pytest.mark.parametrize("verb", ["train", "detect", "evaluate", "synth", "preprocess", "info", "report", "view"])
def test_help_fits_80_columns_without_cut_words(verb: str) -> None:
    result = runner.invoke(app, [verb, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    assert max(map(len, result.output.splitlines())) <= 80 and "…" not in result.output


def test_cli_switches_are_recorded_in_the_bundle(tmp_path: Path) -> None:
    write_class(tmp_path / "data")
    result = cli_train(tmp_path, "--lr-g", "1e-4", "--lr-d", "4e-4", "--d-every", "2", "--no-smoothing")
    assert result.exit_code == 0, result.output
    settings = load_bundle(tmp_path / "models" / "sphere-gan").meta.training.config["objective_settings"]
    assert (settings["lr_g"], settings["lr_d"], settings["d_every"], settings["smooth"]) == (1e-4, 4e-4, 2, 1.0)
    result = cli_train(tmp_path, "--gp-weight", "5", "--force")
    assert result.exit_code == 2 and "--gp-weight applies to wgan-gp, not gan" in result.output
