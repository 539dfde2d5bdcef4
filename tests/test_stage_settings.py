"""Each training stage is handed only its own settings, drawn from the one TrainConfig that a
bundle's model.json records, so what a stage reads is in its signature."""

import json
import typing
from pathlib import Path

import pytest

from anomaly_gan.train.config import (
    CalibrationStage,
    DataStage,
    EncoderStage,
    GanStage,
    HeadStage,
    TrainConfig,
)
from anomaly_gan.train.data import load_training_data
from anomaly_gan.train.head import build_head, defective_batch, train_head
from anomaly_gan.train.run import calibrate_networks
from anomaly_gan.train.trainer import train_encoder, train_gan
from tests.conftest import tiny_config

STAGES = ("data_stage", "gan_stage", "encoder_stage", "head_stage", "calibration_stage")


def test_every_stage_reads_back_from_a_recorded_config(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, channels="rgb", head_steps=7, head_kinds=("dent",), far=0.05, seed=3)
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert [getattr(again, s) for s in STAGES] == [getattr(config, s) for s in STAGES]
    head = config.head_stage
    assert (head.steps, head.kinds, head.network.channels, head.seed) == (7, ("dent",), 3, 3)
    assert config.data_stage.kinds == ("dent",) and config.data_stage.channels == "rgb"
    assert config.encoder_stage.kappa == config.invert.kappa and config.calibration_stage.far == 0.05
    assert config.gan_stage.steps == config.total_steps


@pytest.mark.parametrize(
    ("function", "stage"),
    [
        (load_training_data, DataStage),
        (train_gan, GanStage),
        (train_encoder, EncoderStage),
        (build_head, HeadStage),
        (defective_batch, HeadStage),
        (train_head, HeadStage),
        (calibrate_networks, CalibrationStage),
    ],
)
def test_a_stage_function_takes_its_stage_not_the_whole_config(function, stage) -> None:
    hints = set(typing.get_type_hints(function).values())
    assert stage in hints and TrainConfig not in hints
