"""The GAN loop and the encoder loop, with atomic checkpoints that resume bit for bit.

All randomness comes from torch's global generators, whose states travel in the checkpoint, so a
run resumed at step k continues exactly as the uninterrupted run would have (on the CPU).
"""

from __future__ import annotations

import copy
import io
import pickle
import re
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from anomaly_gan.fsutil import atomic_write_bytes
from anomaly_gan.models.config import NetConfig
from anomaly_gan.models.dcgan import Critic, Encoder, Generator, init_weights
from anomaly_gan.precision import autocast
from anomaly_gan.train.augment import diff_augment
from anomaly_gan.train.config import EncoderStage, GanStage, TrainConfig
from anomaly_gan.train.objectives import CriticFn, Objective
from anomaly_gan.train.replicas import average_gradients, broadcast_buffers
from anomaly_gan.typed_json import Count, NonNegative, first_problem

CHECKPOINT = "checkpoint.pt"


class CheckpointMeta(BaseModel):
    """What checkpoint.pt must hold to be resumed from (checked after torch.load, weights only)."""

    model_config = ConfigDict(strict=True, arbitrary_types_allowed=True, extra="ignore")

    models: dict[str, dict]
    ema: dict | None
    optimisers: dict[str, dict]
    fixed_z: torch.Tensor
    step: Count
    encoder_step: Count
    seconds: NonNegative
    extra: dict
    rng: torch.Tensor
    cuda_rng: list | None


LAYOUT = torch.channels_last  # networks and batches: 1.3-1.4x faster convolutions on the CPU


@dataclass
class TrainState:
    generator: Generator
    critic: Critic
    encoder: Encoder
    ema: Generator | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    opt_e: torch.optim.Optimizer
    fixed_z: torch.Tensor  # for comparable sample grids
    step: int = 0  # generator updates done
    encoder_step: int = 0
    seconds: float = 0.0  # training time so far, across resumes
    extra: dict = field(default_factory=dict)

    @property
    def final_generator(self) -> Generator:
        return self.ema if self.ema is not None else self.generator


def build_state(config: TrainConfig, net: NetConfig, objective: Objective, device: torch.device) -> TrainState:
    torch.manual_seed(config.seed)
    generator, critic, encoder = Generator(net), Critic(net), Encoder(net)
    for model in (generator, critic, encoder):
        model.apply(init_weights)
        model.to(device, memory_format=LAYOUT)
    opt_g, opt_d = objective.optimizers(generator, critic)
    opt_e = torch.optim.Adam(encoder.parameters(), config.encoder_lr, betas=config.encoder_betas)
    ema = copy.deepcopy(generator).eval().requires_grad_(False) if config.ema else None
    fixed_z = torch.randn(16, net.latent, device=device)
    return TrainState(generator, critic, encoder, ema, opt_g, opt_d, opt_e, fixed_z)


def save_checkpoint(folder: Path, state: TrainState) -> None:
    payload = {
        "models": {k: getattr(state, k).state_dict() for k in ("generator", "critic", "encoder")},
        "ema": state.ema.state_dict() if state.ema is not None else None,
        "optimisers": {k: getattr(state, k).state_dict() for k in ("opt_g", "opt_d", "opt_e")},
        "fixed_z": state.fixed_z,
        "step": state.step,
        "encoder_step": state.encoder_step,
        "seconds": state.seconds,
        "extra": state.extra,
        "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(folder / CHECKPOINT, buffer.getvalue())


class CheckpointError(ValueError):
    """A checkpoint.pt this tool cannot (or must not) resume from; the message names the file."""


def load_checkpoint(folder: Path, state: TrainState) -> None:
    """Restore `state`. weights_only=True: the file may only hold tensors and plain values, so a
    checkpoint replaced by a crafted pickle is refused instead of running its code."""
    path = folder / CHECKPOINT
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of foreign files
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location=state.fixed_z.device, weights_only=True)
    except pickle.UnpicklingError as e:
        call = re.search(r"GLOBAL (\S+)", str(e))
        reason = f"it would call {call.group(1)}" if call else "not a checkpoint file"
        raise CheckpointError(
            f"{path}: refused ({reason}); a checkpoint may hold only tensors and plain values"
        ) from None
    except (RuntimeError, EOFError, ValueError, IndexError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{path}: unreadable checkpoint ({_first_line(e)[:160]})") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path}: damaged checkpoint (not a mapping of named parts)")
    missing = [key for key in CheckpointMeta.model_fields if key not in payload]
    if missing:
        raise CheckpointError(f"{path}: incomplete checkpoint (no {', '.join(map(repr, missing))})")
    problem = first_problem(CheckpointMeta, payload)
    if problem:
        where, _, what = problem.partition(": ")
        raise CheckpointError(f"{path}: damaged checkpoint ({where} not as written: {what})")
    try:
        for key, value in payload["models"].items():
            getattr(state, key).load_state_dict(value)
        if state.ema is not None and payload["ema"] is not None:
            state.ema.load_state_dict(payload["ema"])
        for key, value in payload["optimisers"].items():
            getattr(state, key).load_state_dict(value)
        state.fixed_z = payload["fixed_z"]
        state.step, state.encoder_step = payload["step"], payload["encoder_step"]
        state.seconds, state.extra = payload["seconds"], payload["extra"]
        torch.set_rng_state(payload["rng"])
        if payload["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(payload["cuda_rng"])
    except (KeyError, IndexError, AttributeError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(
            f"{path}: does not fit this run's networks; was it written with other network "
            f"settings? ({_first_line(e)[:120]})"
        ) from None


def _first_line(error: Exception) -> str:
    """An exception's first line, or its type's name when it has no message (a zero-byte file)."""
    return next(iter(str(error).strip().splitlines()), "") or type(error).__name__


def _sample(data: torch.Tensor, batch: int) -> torch.Tensor:
    return data[torch.randint(data.shape[0], (batch,)).to(data.device)]


@torch.no_grad()
def _update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p, 1 - decay)
    for e, b in zip(ema.buffers(), model.buffers(), strict=True):
        e.copy_(b)


def gan_step(
    objective: Objective,
    generator: nn.Module,
    critic: nn.Module,
    view: CriticFn,
    optimisers: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
    step: int,
    real_batch: Callable[[], torch.Tensor],
    noise: Callable[[], torch.Tensor],
    precision: str = "fp32",
) -> dict[str, float]:
    """One generator update and the critic updates before it; returns the log row's losses.

    `view` is how the critic sees a batch (possibly augmented); `critic` is its module, for the
    objective's weight constraint; `precision` a resolved one (anomaly_gan.precision). Shared by
    the image loop and the tests' 2-D toy.
    """
    opt_g, opt_d = optimisers
    device = next(generator.parameters()).device
    row: dict[str, float] = {}
    if objective.update_critic(step):
        for i in range(objective.n_critic):
            real = real_batch()
            with torch.no_grad(), autocast(device, precision):
                fake = generator(noise())
            with autocast(device, precision):
                d_loss, row = objective.critic_loss(view, real, fake.float(), step * objective.n_critic + i)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            average_gradients(critic)
            opt_d.step()
            objective.after_critic_step(critic)
        row["d_loss"] = d_loss.item()
    with autocast(device, precision):
        fake = generator(noise())
        g_loss, g_stats = objective.generator_loss(view, fake.float())
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    average_gradients(generator)
    opt_g.step()
    return {"g_loss": g_loss.item(), **row, **g_stats}


def train_gan(
    stage: GanStage, objective: Objective, state: TrainState, data: torch.Tensor
) -> Iterator[dict[str, float]]:
    """Run generator updates from state.step to stage.steps; yields one log row per step."""
    g, d, device = state.generator, state.critic, data.device
    data = data.contiguous(memory_format=LAYOUT)  # a no-op when already in the networks' layout
    g.train()
    d.train()
    view = (lambda x: d(diff_augment(x))) if stage.augment else d
    for step in range(state.step, stage.steps):
        started = time.perf_counter()
        row = gan_step(
            objective,
            g,
            d,
            view,
            (state.opt_g, state.opt_d),
            step,
            lambda: _sample(data, stage.batch_size),
            lambda: torch.randn(stage.batch_size, stage.latent, device=device),
            stage.precision,
        )
        broadcast_buffers(g, d)
        if state.ema is not None:  # warm-up: early weights are forgotten quickly
            _update_ema(state.ema, g, min(stage.ema, (1 + step) / (10 + step)))
        state.step = step + 1
        elapsed = time.perf_counter() - started
        state.seconds += elapsed
        yield {
            "step": state.step,
            **row,
            "lr_g": state.opt_g.param_groups[0]["lr"],
            "lr_d": state.opt_d.param_groups[0]["lr"],
            "seconds": elapsed,
        }


def train_encoder(stage: EncoderStage, state: TrainState, data: torch.Tensor) -> Iterator[dict[str, float]]:
    """f-AnoGAN izi_f: E learns x -> z with G and D frozen, so that G(E(x)) matches x in image
    space and in the critic's feature space (weight kappa)."""
    g, d, e = state.final_generator.eval(), state.critic.eval(), state.encoder.train()
    data = data.contiguous(memory_format=LAYOUT)
    for model in (g, d):
        model.requires_grad_(False)
    for step in range(state.encoder_step, stage.steps):
        started = time.perf_counter()
        real = _sample(data, stage.batch_size)
        with autocast(data.device, stage.precision):
            recon = g(e(real)).float()
            image = ((recon - real) ** 2).mean()
            feature = ((d(recon)[1] - d(real)[1]) ** 2).mean()
            loss = image + stage.kappa * feature
        state.opt_e.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(e)
        state.opt_e.step()
        broadcast_buffers(e)
        state.encoder_step = step + 1
        elapsed = time.perf_counter() - started
        state.seconds += elapsed
        yield {
            "step": state.encoder_step,
            "e_loss": loss.item(),
            "e_image": image.item(),
            "e_feature": feature.item(),
            "seconds": elapsed,
        }
    for model in (g, d):
        model.requires_grad_(True)
