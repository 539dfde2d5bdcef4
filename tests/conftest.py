"""Shared fixtures: tiny synthetic scans written by the project's own writers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from anomaly_gan.data.scan import Scan
from anomaly_gan.data.synth import render_scan, scan_rng

os.environ.setdefault("COLUMNS", "120")  # stable rich output width in CLI tests


def make_scan(index: int = 0, shape: str = "sphere", seed: int = 0) -> Scan:
    return render_scan(shape, scan_rng(seed, shape, index), f"{index:05d}")


def saved_records(folder: Path) -> list[dict]:
    """The records a detect or evaluate run wrote (results.jsonl), as dicts."""
    lines = (folder / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def mm_scan(scan_id: str = "s1", size: int = 64) -> Scan:
    """A scan in millimetres with an object in the middle (for layout round trips)."""
    rng = np.random.default_rng(1)
    rgb = np.zeros((size, size, 3), np.uint8)
    depth = np.full((size, size), np.nan, np.float32)
    rgb[16:48, 20:44] = rng.integers(30, 255, (32, 24, 3))
    depth[16:48, 20:44] = 800 + rng.random((32, 24)).astype(np.float32) * 40
    return Scan(scan_id, rgb, depth, "mm")


def tiny_config(tmp: Path, **overrides):
    """A training run of a few seconds: tiny networks, few steps, small synthetic class."""
    from anomaly_gan.bundle.meta import InvertSettings
    from anomaly_gan.train.config import TrainConfig

    settings = dict(
        name="sphere",
        data=tmp / "data",
        out=tmp / "models",
        steps=12,
        encoder_steps=6,
        batch_size=8,
        width=4,
        latent=8,
        val_block=8,
        val_every=4,
        min_scans=16,
        checkpoint_every=4,
        sample_every=6,
        device="cpu",
        head_steps=20,
        head_batch=8,
        invert=InvertSettings(restarts=1, steps=3),
    )
    settings.update(overrides)
    return TrainConfig(**settings)


def write_class(root: Path, shape: str = "sphere", count: int = 40, seed: int = 0) -> Path:
    from anomaly_gan.data.synth_sets import synthesise

    list(synthesise(root / shape, shape, count, seed=seed, workers=1))
    return root


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny trained bundle shared by the detection tests."""
    from anomaly_gan.train.run import train

    tmp = tmp_path_factory.mktemp("bundle")
    write_class(tmp / "data")
    return train(tiny_config(tmp), lambda *a: None).path


def cli_train(tmp: Path, *extra: str, steps: int = 8, encoder_steps: int = 2):
    """`anomaly-gan train` of tmp/data into tmp/models: tiny networks, few steps, on the CPU."""
    from typer.testing import CliRunner

    from anomaly_gan.cli import app

    tiny = ["--width", "4", "--batch-size", "4", "--head-steps", "2", "--device", "cpu"]
    return CliRunner().invoke(
        app,
        [
            "train",
            *("--shape", "sphere", "--data", str(tmp / "data"), "--out", str(tmp / "models")),
            *("--steps", str(steps), "--encoder-steps", str(encoder_steps), *tiny, *extra),
        ],
    )
