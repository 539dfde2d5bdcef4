"""`anomaly-gan train` from start to bundle: data, GAN, encoder, calibration, export, plots."""

from __future__ import annotations

import datetime
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from anomaly_gan.bundle.calibration import Calibration
from anomaly_gan.bundle.meta import DEFAULT_MODE, MODES, BundleMeta, InvertSettings, TrainingSummary
from anomaly_gan.bundle.store import Bundle, export_networks, load_bundle, write_meta
from anomaly_gan.detect.calibrate import calibrate
from anomaly_gan.detect.scorer import Networks, Scorer
from anomaly_gan.device import resolve_device
from anomaly_gan.distributed import ALONE, World
from anomaly_gan.models.config import NetConfig
from anomaly_gan.precision import resolve_precision
from anomaly_gan.train.config import CalibrationStage, TrainConfig
from anomaly_gan.train.data import TrainingData, TrainingError, class_folder, load_training_data
from anomaly_gan.train.head import build_head, train_head
from anomaly_gan.train.monitor import TrainLog, save_gif, save_interpolation, save_plots, save_samples
from anomaly_gan.train.objective_settings import DEFAULT_STEPS, NEUTRAL_SWITCHES
from anomaly_gan.train.objectives import Objective
from anomaly_gan.train.replicas import any_rank, gather, weights_digest
from anomaly_gan.train.stopping import StopNow, stop_at_step_boundary
from anomaly_gan.train.trainer import (
    CHECKPOINT,
    TrainState,
    build_state,
    load_checkpoint,
    save_checkpoint,
    train_encoder,
    train_gan,
)

# report(phase, total, row): phase is "synth", "gan", "encoder", "head", "calibrate" or "skipped".
Report = Callable[[str, int, dict], None]
RESUME_KEYS = (
    "objective",
    "objective_settings",
    "width",
    "latent",
    "batch_size",
    "seed",
    "augment",
    "ema",
    "spectral_norm",
    "channels",
    "image_size",
    "precision",
)


class TrainingInterrupted(RuntimeError):
    """Ctrl-C during training; a checkpoint was saved."""


def prepare_bundle_dir(config: TrainConfig, resume: bool, force: bool) -> Path:
    folder = config.bundle_dir
    finished, interrupted = (folder / "model.json").exists(), (folder / CHECKPOINT).exists()
    if resume:
        if not interrupted:
            raise TrainingError(f"{folder}: no checkpoint to resume from")
        return folder
    if (finished or interrupted) and not force:
        what = "a trained bundle" if finished else "an interrupted run (use --resume to continue)"
        raise TrainingError(f"{folder}: holds {what}; use --force to start over")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def _check_resumable(config: TrainConfig, state: TrainState) -> None:
    saved, now = dict(state.extra.get("config", {})), config.to_dict()
    if "objective_settings" in saved:  # a switch added since the run began: the run had its neutral value
        saved["objective_settings"] = NEUTRAL_SWITCHES | saved["objective_settings"]
    changed = [k for k in RESUME_KEYS if k in saved and saved[k] != now[k]]
    if changed:
        raise TrainingError(f"cannot resume with different {', '.join(changed)} than the interrupted run")


def calibrate_networks(
    nets: Networks,
    invert: InvertSettings,
    stage: CalibrationStage,
    data: TrainingData,
    device: torch.device,
    report: Report,
    modes: tuple[str, ...] = MODES,
) -> dict[str, Calibration]:
    """One Calibration per mode, on the held-out good scans and their simulated-defect copies."""
    scorer = Scorer(nets, invert, device, stage.batch_size, stage.seed)
    return calibrate(
        scorer,
        data.validation,
        data.validation_ids,
        data.validation_silhouettes,
        data.validation_defective,
        data.validation_defective_ids,
        stage.far,
        lambda mode: report("calibrate", len(modes), {"mode": mode}),
        modes,
    )


def train(
    config: TrainConfig, report: Report, resume: bool = False, force: bool = False, world: World = ALONE
) -> Bundle | None:
    """Train, calibrate and export one bundle; returns it, loaded from disk.

    Under torchrun (`world` of several ranks) every rank trains on its part of the scans with
    gradients averaged (train.replicas); rank 0 alone writes the folder, checkpoints and bundle, and
    the other ranks return None.
    """
    try:
        objective = config.build_objective()
    except ValueError as e:
        raise TrainingError(str(e)) from None
    device = resolve_device(config.device, world.local_rank)
    try:
        config = replace(config, precision=resolve_precision(config.precision, device))
    except ValueError as e:
        raise TrainingError(str(e)) from None
    world.start("nccl" if device.type == "cuda" else "gloo")
    folder = prepare_bundle_dir(config, resume, force) if world.main else config.bundle_dir
    world.barrier("the bundle folder was prepared")
    clock = StageClock()
    if world.main:  # built-in scans are synthesised once, by rank 0
        class_folder(config, lambda n: report("synth", config.synth_count, {}))
    world.barrier("the training scans were made")
    data = load_training_data(config.data_stage, class_folder(config))
    config = replace(config, channels=data.channels)  # --channels, or what the scans hold
    for line in data.skipped:
        report("skipped", 0, {"message": line})
    net = config.net_config(objective.critic_norm)
    state = build_state(config, net, objective, device)
    if resume:
        load_checkpoint(folder, state)
        _check_resumable(config, state)
    if world.distributed:  # same weights everywhere, but each rank its own batches and noise
        torch.manual_seed(config.seed + 7919 * world.rank + state.step + state.encoder_step)
    state.extra["config"] = config.to_dict()
    clock.laps = state.extra.setdefault("stages", {})  # kept in the checkpoint: times add up across resumes
    clock.lap("data")
    writes = folder if world.main else None  # the other ranks write nothing
    log = TrainLog(writes, {"gan": state.step, "encoder": state.encoder_step} if resume else None)
    local = replace(config, batch_size=max(1, config.batch_size // world.size))
    train_x = data.train[world.rank :: world.size].to(device)  # all 4 channels: the head simulates defects on them
    _train_networks(local, objective, state, config.channel_set.pick(train_x).contiguous(), log, report, clock, writes)
    if world.main:
        save_checkpoint(folder, state)
    clock.lap("encoder")
    try:
        head = None
        if config.head:
            head = build_head(config.head_stage, device)
            for row in train_head(config.head_stage, head, state.final_generator, state.encoder, train_x):
                log.write("head", row)
                report("head", config.head_steps, row)
            clock.lap("head")
        log.close()
        digests = gather(
            weights_digest(state.final_generator, state.critic, state.encoder, *([head] if head is not None else []))
        )
        if not world.main:
            world.barrier("rank 0 exported the bundle")
            world.stop()
            return None
        if len(set(digests)) > 1:
            raise TrainingError(
                f"the {world.size} ranks ended with different weights ({', '.join(digests)}); nothing was exported"
            )
        g, d, e = state.final_generator.eval(), state.critic.eval(), state.encoder.eval()
        nets = Networks(g, d, e, lambda: g, config.latent, head, config.channel_set)
        calibration = calibrate_networks(nets, config.invert, config.calibration_stage, data, device, report)
        clock.lap("calibration")
        save_plots(folder, log.rows())
        save_gif(folder)
        save_interpolation(folder, state.final_generator, state.fixed_z)
        networks = {"generator": state.final_generator, "critic": state.critic, "encoder": state.encoder}
        export_networks(folder, networks | ({"segmenter": head} if head is not None else {}), net)
        clock.lap("export")
        write_meta(folder, _meta(config, net, data, state, calibration, clock.laps, device, digests))
    except KeyboardInterrupt:
        log.close()
        raise TrainingInterrupted(
            f"interrupted after the GAN and encoder finished (head, calibration or "
            f"export); they are saved in {folder / CHECKPOINT}"
        ) from None
    (folder / CHECKPOINT).unlink()
    world.barrier("rank 0 exported the bundle")
    world.stop()
    return load_bundle(folder)


def _train_networks(
    config: TrainConfig,
    objective: Objective,
    state: TrainState,
    train_x: torch.Tensor,
    log: TrainLog,
    report: Report,
    clock: StageClock,
    folder: Path | None,
) -> None:
    """GAN then encoder from wherever `state` stands, checkpointing into `folder` (None: a rank
    other than 0, which writes nothing) as it goes. Ctrl-C/SIGTERM stop every rank at the next step
    boundary with a checkpoint; a second one stops at once, without saving."""
    checkpoint = (lambda: save_checkpoint(folder, state)) if folder else (lambda: None)
    try:
        with stop_at_step_boundary() as check:
            for row in train_gan(config.gan_stage, objective, state, train_x):
                log.write("gan", row)
                report("gan", config.total_steps, row)
                clock.lap("gan")
                if folder and (state.step % config.sample_every == 0 or state.step == config.total_steps):
                    save_samples(folder, state.final_generator, state.fixed_z, state.step)
                if state.step % config.checkpoint_every == 0:
                    checkpoint()
                check(any_rank)
            for row in train_encoder(config.encoder_stage, state, train_x):
                log.write("encoder", row)
                report("encoder", config.encoder_steps, row)
                clock.lap("encoder")
                if state.encoder_step % config.checkpoint_every == 0:
                    checkpoint()
                check(any_rank)
    except StopNow:
        log.close()
        if folder and not (folder / CHECKPOINT).exists():
            raise TrainingError(
                "stopped at once, before the first checkpoint; start again with --force (or --out elsewhere)"
            ) from None
        raise TrainingInterrupted(
            f"stopped at once, mid-step; {config.bundle_dir / CHECKPOINT} holds the last periodic checkpoint"
        ) from None
    except KeyboardInterrupt:
        checkpoint()
        log.close()
        raise TrainingInterrupted(
            f"interrupted at GAN step {state.step}, encoder step "
            f"{state.encoder_step}; checkpoint saved in {config.bundle_dir}"
        ) from None


class StageClock:
    """Wall seconds per training stage, in the order they first ran (checkpoints and samples
    included in the stage that wrote them)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        """Charge the time since the last lap to `stage`."""
        now = time.perf_counter()
        self.laps[stage] = self.laps.get(stage, 0.0) + now - self._last
        self._last = now


def _meta(
    config: TrainConfig,
    net: NetConfig,
    data: TrainingData,
    state: TrainState,
    calibration: dict[str, Calibration],
    stages: dict[str, float],
    device: torch.device,
    digests: list[str],
) -> BundleMeta:
    training = TrainingSummary(
        data=str(data.folder),
        layouts=data.layouts,
        train_scans=int(data.train.shape[0]),
        validation_scans=int(data.validation.shape[0]),
        validation_ids=data.validation_ids,
        validation_split=f"every {config.val_every}th block of {config.val_block} consecutive scans",
        skipped_files=len(data.skipped),
        steps=state.step,
        encoder_steps=state.encoder_step,
        seconds=round(state.seconds, 1),
        calibration_seconds=round(stages["calibration"], 1),
        device=str(device),
        torch=torch.__version__,
        mean_good_score=float(np.mean(calibration[DEFAULT_MODE].good_scores)),
        config=config.to_dict(),
        finished=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        head_seconds=round(stages.get("head", 0.0), 1),
        train_ids=data.train_ids,
        default_steps=DEFAULT_STEPS[config.objective],
        stages={k: round(v, 2) for k, v in stages.items()},
        world_size=len(digests),
        replica_digests=digests,
        grayscale=data.grayscale,
    )
    return BundleMeta(
        name=config.name,
        objective=config.objective,
        network=net,
        depth=data.scale,
        invert=config.invert,
        calibration=calibration,
        training=training,
        framing=config.framing,
        segmenter=config.head_stage.network if config.head else None,
    )
