"""Give a trained bundle what the current code trains after its GAN, without training the GAN
again: a new segmentation head and calibration (after the head's training changed), or only a new
calibration (after the way components become a score changed). Same seeds and data as `train`."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from anomaly_gan.bundle.meta import MODES
from anomaly_gan.bundle.store import Bundle, export_networks, load_bundle, write_meta
from anomaly_gan.detect.scorer import Networks
from anomaly_gan.device import resolve_device
from anomaly_gan.precision import resolve_precision
from anomaly_gan.train.config import TrainConfig
from anomaly_gan.train.data import TrainingData, class_folder, load_training_data
from anomaly_gan.train.head import build_head, train_head
from anomaly_gan.train.run import Report, StageClock, calibrate_networks

HEAD_FIELDS = ("head_steps", "head_batch", "head_lr", "head_jitter", "head_kinds", "segmenter")  # current defaults


def refresh_bundle(
    source: Path,
    out: Path,
    calibration_only: bool = False,
    device: str = "auto",
    head_steps: int | None = None,
    report: Report = lambda phase, total, row: None,
) -> Bundle:
    """Write to `out` (which may be `source`) a copy of the bundle in `source` with a new head and
    every mode recalibrated, or with only the calibration redone; the training settings are the ones
    the bundle recorded, the head's the current defaults (`head_steps` if given). The new bundle is
    built beside `out` and moved into place at the end, so an interrupted refresh leaves `out` as it
    was. The caller decides whether an existing `out` may be replaced."""
    bundle = load_bundle(source, upgrade=True)
    meta = bundle.meta
    recorded = TrainConfig.from_dict(meta.training.config)
    defaults = TrainConfig(name=meta.name)
    config = replace(recorded, device=device, head=True, **{f: getattr(defaults, f) for f in HEAD_FIELDS})
    config = replace(config, head_steps=head_steps or config.head_steps)
    if calibration_only:
        bundle = recalibrate(bundle, config, MODES, report)
    else:
        bundle = retrain_head(bundle, config, MODES, report)
    building = out.with_name(f".{out.name}.refreshing")
    shutil.rmtree(building, ignore_errors=True)
    shutil.copytree(source, building, ignore=shutil.ignore_patterns("checkpoint*"))
    if not calibration_only:
        export_networks(building, {"segmenter": bundle.segmenter}, meta.network)
    write_meta(building, replace(bundle.meta, default_mode=meta.default_mode))
    _swap(building, out)
    return load_bundle(out)


def _swap(building: Path, out: Path) -> None:
    """Put the finished folder at `out`; the old one (if any) is removed only once the new one is there."""
    old = out.with_name(f".{out.name}.replaced")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    building.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def retrain_head(
    bundle: Bundle,
    config: TrainConfig,
    modes: tuple[str, ...] = ("fast",),
    report: Report = lambda phase, total, row: None,
) -> Bundle:
    """The bundle with a new head trained on config.head_kinds and recalibrated in `modes`, in
    memory (nothing written): for leave-one-kind-out measurements, and for giving benchmark bundles
    the head the current code trains. Its training summary records the new head's settings and times."""
    bundle, config, data = _prepared(bundle, config)
    clock = StageClock()
    head = build_head(config.head_stage, data.train.device)
    for row in train_head(config.head_stage, head, bundle.generator, bundle.encoder, data.train):
        report("head", config.head_steps, row)
    clock.lap("head")
    old = bundle.meta.training
    head_settings = {k: v for k, v in config.to_dict().items() if k.startswith("head")}
    training = replace(old, head_seconds=round(clock.laps["head"], 1), config={**old.config, **head_settings})
    meta = replace(bundle.meta, segmenter=config.head_stage.network, training=training)
    bundle = Bundle(bundle.path, meta, bundle.generator, bundle.critic, bundle.encoder, head)
    return _recalibrated(bundle, config, data, modes, clock, report)


def recalibrate(
    bundle: Bundle,
    config: TrainConfig,
    modes: tuple[str, ...] = ("fast",),
    report: Report = lambda phase, total, row: None,
) -> Bundle:
    """The bundle, networks unchanged, recalibrated in `modes` by the current code, in memory: for
    giving benchmark bundles the current way of combining components into a score."""
    bundle, config, data = _prepared(bundle, config)
    return _recalibrated(bundle, config, data, modes, StageClock(), report)


def _prepared(bundle: Bundle, config: TrainConfig) -> tuple[Bundle, TrainConfig, TrainingData]:
    """The bundle on the config's device, the config framed as the bundle frames scans, and the
    bundle's training data (the same held-out scans and simulated defects as when it was trained)."""
    device = resolve_device(config.device)
    net = bundle.meta.network
    config = replace(
        config,
        framing=bundle.meta.framing,
        channels=net.inputs,
        image_size=net.image_size,
        precision=resolve_precision(config.precision, device),
    )
    data = load_training_data(config.data_stage, class_folder(config))
    return bundle.to(device), config, replace(data, train=data.train.to(device))


def _recalibrated(
    bundle: Bundle, config: TrainConfig, data: TrainingData, modes: tuple[str, ...], clock: StageClock, report: Report
) -> Bundle:
    """The bundle calibrated again in `modes`; its training summary gets the new calibration time."""
    nets = Networks.of(bundle)
    calibration = calibrate_networks(
        nets, bundle.meta.invert, config.calibration_stage, data, data.train.device, report, modes
    )
    clock.lap("calibration")
    old = bundle.meta.training
    training = replace(
        old,
        calibration_seconds=round(clock.laps["calibration"], 1),
        stages={**old.stages, **{k: round(v, 2) for k, v in clock.laps.items()}} if old.stages else {},
    )
    meta = replace(bundle.meta, calibration=calibration, default_mode=modes[0], training=training)
    return Bundle(bundle.path, meta, bundle.generator, bundle.critic, bundle.encoder, bundle.segmenter)
