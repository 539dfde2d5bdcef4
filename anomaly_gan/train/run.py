"""`anomaly-gan train` from start to bundle: data, GAN, encoder, calibration, export, plots."""

from __future__ import annotations

import datetime
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from anomaly_gan.bundle import export_networks, write_meta
from anomaly_gan.config import TrainConfig
from anomaly_gan.detect.invert import MODES
from anomaly_gan.detect.score import SEED_WEIGHTS, Calibration, fit_weights
from anomaly_gan.detect.scorer import Networks, Scorer
from anomaly_gan.device import resolve_device
from anomaly_gan.train.data import TrainingData, TrainingError, class_folder, load_training_data
from anomaly_gan.train.monitor import TrainLog, save_gif, save_interpolation, save_plots, save_samples
from anomaly_gan.train.objectives import OBJECTIVES
from anomaly_gan.train.trainer import (
    CHECKPOINT,
    TrainState,
    build_state,
    load_checkpoint,
    save_checkpoint,
    train_encoder,
    train_gan,
)

# report(phase, total, row): phase is "synth", "gan", "encoder", "calibrate" or "skipped".
Report = Callable[[str, int, dict], None]
RESUME_KEYS = ("objective", "width", "latent", "batch_size", "seed", "augment", "ema", "spectral_norm")


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
    saved = state.extra.get("config", {})
    changed = [k for k in RESUME_KEYS if k in saved and saved[k] != config.to_dict()[k]]
    if changed:
        raise TrainingError(f"cannot resume with different {', '.join(changed)} than the interrupted run")


def calibrate(config: TrainConfig, state: TrainState, data: TrainingData, device: torch.device,
              report: Report) -> dict[str, dict]:
    """Score the held-out good block (and defect-injected copies of it) in every mode; fit the
    component weights, keep the good scans' statistics and set the threshold."""
    g, d, e = state.final_generator.eval(), state.critic.eval(), state.encoder.eval()
    nets = Networks(g, d, e, lambda: g, config.latent)
    scorer = Scorer(nets, config.invert, device, config.batch_size, config.seed)
    result = {}
    for mode in MODES:
        good = scorer.score_all(data.validation, mode).values
        if mode == "seed":
            weights, origin = SEED_WEIGHTS, "the publication's score (mean final search loss)"
        else:
            defective = scorer.score_all(data.validation_defective, mode).values
            weights = fit_weights(good, defective)
            origin = (f"fitted on {len(data.validation)} held-out good scans vs "
                      f"{len(data.validation_defective)} defect-injected copies of them")
        result[mode] = Calibration.fit(good, weights, config.far).to_dict() | {"weights_origin": origin}
        report("calibrate", len(MODES), {"mode": mode})
    return result


def train(config: TrainConfig, report: Report, resume: bool = False, force: bool = False) -> Path:
    """Train, calibrate and export one bundle; returns its folder."""
    if config.objective not in OBJECTIVES:
        raise TrainingError(f"unknown objective {config.objective!r}; choose from {', '.join(OBJECTIVES)}")
    device = resolve_device(config.device)
    folder = prepare_bundle_dir(config, resume, force)
    data = load_training_data(config, class_folder(config, lambda n: report("synth", config.synth_count, {})))
    for line in data.skipped:
        report("skipped", 0, {"message": line})
    objective = OBJECTIVES[config.objective]()
    net = config.net_config(objective.critic_norm)
    state = build_state(config, net, objective, device)
    if resume:
        load_checkpoint(folder, state)
        _check_resumable(config, state)
    state.extra["config"] = config.to_dict()
    log = TrainLog(folder, {"gan": state.step, "encoder": state.encoder_step} if resume else None)
    train_x = data.train.to(device)
    try:
        for row in train_gan(config, objective, state, train_x):
            log.write("gan", row)
            report("gan", config.total_steps, row)
            if state.step % config.sample_every == 0 or state.step == config.total_steps:
                save_samples(folder, state.final_generator, state.fixed_z, state.step)
            if state.step % config.checkpoint_every == 0:
                save_checkpoint(folder, state)
        for row in train_encoder(config, state, train_x):
            log.write("encoder", row)
            report("encoder", config.encoder_steps, row)
            if state.encoder_step % config.checkpoint_every == 0:
                save_checkpoint(folder, state)
    except KeyboardInterrupt:
        save_checkpoint(folder, state)
        log.close()
        raise TrainingInterrupted(f"interrupted at GAN step {state.step}, encoder step "
                                  f"{state.encoder_step}; checkpoint saved in {folder}") from None
    log.close()
    save_checkpoint(folder, state)
    started = time.perf_counter()
    calibration = calibrate(config, state, data, device, report)
    calibration_seconds = time.perf_counter() - started
    save_plots(folder, log.rows())
    save_gif(folder)
    save_interpolation(folder, state.final_generator, state.fixed_z)
    export_networks(folder, {"generator": state.final_generator, "critic": state.critic,
                             "encoder": state.encoder}, net)
    write_meta(folder, _meta(config, net, data, state, calibration, calibration_seconds, device))
    (folder / CHECKPOINT).unlink()
    return folder


def _meta(config: TrainConfig, net, data: TrainingData, state: TrainState, calibration: dict,
          calibration_seconds: float, device: torch.device) -> dict:
    return {
        "name": config.name,
        "objective": config.objective,
        "network": net.to_dict(),
        "channels": ["R", "G", "B", "D"],
        "normalisation": {
            "colour": "value / 127.5 - 1",
            "depth": data.scale.to_dict(),
            "depth_encoding": "nearness: depth near -> 1, far -> -0.8, missing -> -1; range fitted on "
                              "the training scans",
        },
        "invert": config.invert.__dict__,
        "default_mode": "refine",
        "calibration": calibration,
        "training": {
            "data": str(data.folder),
            "layouts": data.layouts,
            "train_scans": int(data.train.shape[0]),
            "validation_scans": int(data.validation.shape[0]),
            "validation_ids": data.validation_ids,
            "validation_split": f"every {config.val_every}th block of {config.val_block} consecutive scans",
            "skipped_files": len(data.skipped),
            "steps": state.step,
            "encoder_steps": state.encoder_step,
            "seconds": round(state.seconds, 1),  # GAN + encoder
            "calibration_seconds": round(calibration_seconds, 1),
            "device": str(device),
            "torch": torch.__version__,
            "mean_good_score": float(np.mean(calibration["refine"]["good_scores"])),
            "config": config.to_dict(),
            "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        },
    }
