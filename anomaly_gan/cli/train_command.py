"""`anomaly-gan train`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from anomaly_gan.bundle.calibration import far_warning
from anomaly_gan.bundle.meta import BundleError, BundleMeta, read_meta
from anomaly_gan.cli.app import (
    caution,
    caution_if_undertrained,
    command,
    console,
    errors,
    fail,
    finite,
    progress_display,
    warn,
)
from anomaly_gan.data.channels import CHANNEL_SETS
from anomaly_gan.distributed import RankFailed, World
from anomaly_gan.fsutil import OutputExistsError, plain_name, refuse_over_inputs
from anomaly_gan.models.config import IMAGE_SIZES
from anomaly_gan.precision import PRECISIONS
from anomaly_gan.train.config import TrainConfig
from anomaly_gan.train.objective_settings import DEFAULT_SETTINGS, DEFAULT_STEPS, SMOOTHED, with_switches

if TYPE_CHECKING:  # torch: loaded only once the cheap checks passed
    from anomaly_gan.bundle.store import Bundle

DEFAULTS = TrainConfig(name="")
STEPS_HELP = (
    "Generator updates (default: " + ", ".join(f"{steps} for {name}" for name, steps in DEFAULT_STEPS.items()) + ")."
)


def _defaults(field: str) -> str:
    """'(default: 0.0002 for gan, ...)' from the objectives' own defaults."""
    return "(default: " + ", ".join(f"{getattr(s, field):g} for {name}" for name, s in DEFAULT_SETTINGS.items()) + ")."


class _Progress:
    """Maps training phases onto one rich progress display with live losses."""

    KEYS = ("d_loss", "g_loss", "d_x", "d_g_z", "wasserstein", "e_loss", "h_loss")

    def __init__(self, progress) -> None:
        self.progress, self.tasks, self.skipped = progress, {}, 0

    def __call__(self, phase: str, total: int, row: dict) -> None:
        if phase == "skipped":
            warn(row["message"])
            self.skipped += 1
            return
        if phase not in self.tasks:
            label = {
                "synth": "synthesising",
                "gan": "GAN",
                "encoder": "encoder",
                "head": "head",
                "calibrate": "calibrating",
            }[phase]
            self.tasks[phase] = self.progress.add_task(label, total=total, status="")
        status = "  ".join(f"{k} {row[k]:.3f}" for k in self.KEYS if k in row)
        if "mode" in row:
            status = row["mode"]
        self.progress.update(self.tasks[phase], advance=1, status=status)


@command()
def train(
    shape: Annotated[str, typer.Option(help="Class name (sphere, cylinder, rectangle or your own).")],
    data: Annotated[
        Path | None,
        typer.Option(
            help="A class root (a folder per class) or a class folder, any layout. Default: built-in synthetic scans."
        ),
    ] = None,
    objective: Annotated[str, typer.Option(help=f"One of {', '.join(DEFAULT_STEPS)}.")] = DEFAULTS.objective,
    wgan: Annotated[bool, typer.Option("--wgan", help="Same as --objective wgan-gp.")] = False,
    steps: Annotated[int | None, typer.Option(min=1, help=STEPS_HELP)] = None,
    encoder_steps: Annotated[int, typer.Option(min=1, help="Encoder (izi_f) updates.")] = DEFAULTS.encoder_steps,
    head: Annotated[bool, typer.Option(help="Train the segmentation head on simulated defects.")] = DEFAULTS.head,
    head_steps: Annotated[int, typer.Option(min=1, help="Segmentation head updates.")] = DEFAULTS.head_steps,
    batch_size: Annotated[int, typer.Option(min=2)] = DEFAULTS.batch_size,
    channels: Annotated[
        str | None,
        typer.Option(
            help="rgbd, rgb or depth: what the networks see (default: what the scans hold; rgb ignores their depth)."
        ),
    ] = None,
    image_size: Annotated[
        int, typer.Option(help=f"Network size: {', '.join(map(str, IMAGE_SIZES))}; scans are resized to it.")
    ] = DEFAULTS.image_size,
    width: Annotated[int, typer.Option(min=4, help="Base channel count of the networks.")] = DEFAULTS.width,
    augment: Annotated[bool, typer.Option(help="DiffAugment on real and fake.")] = DEFAULTS.augment,
    ema: Annotated[float, typer.Option(min=0.0, max=0.99999, help="Generator EMA decay (0 = off).")] = DEFAULTS.ema,
    far: Annotated[
        float,
        typer.Option(
            min=0.0001,
            max=0.5,
            callback=finite,
            help="False-alarm rate the threshold promises (n held-out good scans support 1/(n+1) and up).",
        ),
    ] = DEFAULTS.far,
    out: Annotated[
        Path, typer.Option(help="Where bundles go: one subfolder per class and objective, e.g. sphere-gan.")
    ] = DEFAULTS.out,
    lr_g: Annotated[float | None, typer.Option(min=0.0, help=f"Generator learning rate {_defaults('lr_g')}")] = None,
    lr_d: Annotated[
        float | None, typer.Option(min=0.0, help=f"Critic learning rate; unequal rates are TTUR {_defaults('lr_d')}")
    ] = None,
    d_every: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="gan, lsgan: update the critic on every N-th "
            "generator step, alternating (default: "
            f"{DEFAULT_SETTINGS['gan'].d_every}).",
        ),
    ] = None,
    label_smoothing: Annotated[
        bool | None,
        typer.Option(
            "--smoothing/--no-smoothing",
            help=f"gan: one-sided label smoothing, real target {SMOOTHED} instead of 1 (default: on).",
            show_default=False,
        ),
    ] = None,
    n_critic: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="WGANs: critic updates per generator update (default: "
            f"wgan-gp {DEFAULT_SETTINGS['wgan-gp'].n_critic}, wgan-clip {DEFAULT_SETTINGS['wgan-clip'].n_critic}).",
        ),
    ] = None,
    clip: Annotated[
        float | None,
        typer.Option(min=0.0, help=f"wgan-clip: critic weight clip (default: {DEFAULT_SETTINGS['wgan-clip'].clip:g})."),
    ] = None,
    gp_weight: Annotated[
        float | None,
        typer.Option(
            min=0.0, help=f"wgan-gp: gradient-penalty weight (default: {DEFAULT_SETTINGS['wgan-gp'].gp_weight:g})."
        ),
    ] = None,
    gp_every: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="wgan-gp: the penalty on every N-th critic update only, N times as heavy "
            f"(default: {DEFAULT_SETTINGS['wgan-gp'].gp_every}).",
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = DEFAULTS.device,
    precision: Annotated[
        str,
        typer.Option(
            help="auto (bfloat16 where the CPU or GPU computes it natively: about twice as fast), bf16 or fp32."
        ),
    ] = DEFAULTS.precision,
    seed: Annotated[int, typer.Option()] = DEFAULTS.seed,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from its checkpoint.")] = False,
    force: Annotated[bool, typer.Option(help="Replace an existing bundle or interrupted run.")] = False,
) -> None:
    """Learn what good scans of one class look like; write a model bundle detect can use."""
    objective = "wgan-gp" if wgan else objective
    _check_choices(shape, channels, image_size, precision)
    smooth = None if label_smoothing is None else (SMOOTHED if label_smoothing else 1.0)
    try:
        settings = with_switches(
            objective,
            lr_g=lr_g,
            lr_d=lr_d,
            d_every=d_every,
            smooth=smooth,
            n_critic=n_critic,
            clip=clip,
            gp_weight=gp_weight,
            gp_every=gp_every,
        )
    except ValueError as e:
        raise fail(str(e)) from None
    config = TrainConfig(
        name=shape,
        objective=objective,
        objective_settings=settings,
        data=data,
        out=out,
        steps=steps,
        batch_size=batch_size,
        channels=channels,
        image_size=image_size,
        width=width,
        augment=augment,
        ema=ema,
        encoder_steps=encoder_steps,
        head=head,
        head_steps=head_steps,
        far=far,
        seed=seed,
        device=device,
        precision=precision,
    )
    if data is not None and not data.exists():
        raise fail(f"{data}: no such file or folder")
    trained = _run(config, resume, force)
    if trained is None:
        return
    bundle, skipped = trained
    _print_summary(bundle)
    if skipped:  # the bundle is written; exit 2 says that some of the scans given were not used
        errors.print(f"{skipped} input file(s) skipped (named above); the bundle learned from the rest")
        raise typer.Exit(2)


def _check_choices(shape: str, channels: str | None, image_size: int, precision: str) -> None:
    try:
        plain_name(shape, "--shape")
    except ValueError as e:
        raise fail(str(e)) from None
    if channels is not None and channels not in CHANNEL_SETS:
        raise fail(f"--channels {channels}: choose one of {', '.join(CHANNEL_SETS)}")
    if image_size not in IMAGE_SIZES:
        raise fail(f"--image-size {image_size}: choose one of {', '.join(map(str, IMAGE_SIZES))}")
    if precision not in PRECISIONS:
        raise fail(f"--precision {precision}: choose one of {', '.join(PRECISIONS)}")


def _run(config: TrainConfig, resume: bool, force: bool) -> tuple[Bundle, int] | None:
    """Train with progress shown; the bundle and how many input files were skipped, or None on a
    torchrun rank other than 0 (it trains quietly; rank 0 writes the bundle)."""
    from anomaly_gan.train.data import TrainingError  # torch loads here, after the cheap checks
    from anomaly_gan.train.run import TrainingInterrupted
    from anomaly_gan.train.run import train as run_training

    world = World.from_env()
    rank = f"rank {world.rank}: " if world.distributed else ""
    try:
        if not world.main:
            run_training(config, lambda phase, total, row: None, resume, force, world)
            return None
        with progress_display() as progress:
            shown = _Progress(progress)
            return run_training(config, shown, resume, force, world), shown.skipped
    except (TrainingError, ValueError, RankFailed) as e:
        raise fail(f"{rank}{e}") from None
    except TrainingInterrupted as e:
        console.print(f"[yellow]{rank}{e}[/]; continue with the same command and --resume")
        raise typer.Exit(130) from None
    except RuntimeError as e:  # a collective call whose peer died (torch.distributed's errors)
        if not world.distributed:
            raise
        raise fail(
            f"{rank}stopped: another rank failed or was stopped ({str(e).splitlines()[0][:160]}); "
            "the last checkpoint is kept, continue with --resume"
        ) from None


def _print_summary(bundle: Bundle) -> None:
    meta, t = bundle.meta, bundle.meta.training
    stages = ", ".join(f"{name} {seconds / 60:.1f}" for name, seconds in t.stages.items())
    processes = f" x {t.world_size} processes" if t.world_size > 1 else ""
    processes += f" in {t.config.get('precision', 'fp32')}"
    console.print(
        f"bundle written to [bold]{bundle.path}[/] ({t.train_scans} training scans, "
        f"{t.validation_scans} held out, {t.minutes:.1f} min on {t.device}{processes}: {stages})"
    )
    caution_if_undertrained(meta.label, meta.undertrained())
    console.print(f"{_threshold_line(meta)}; plots and samples in {bundle.path}")


def _threshold_line(meta: BundleMeta) -> str:
    """The default mode's threshold and what it promises; a caution first when --far asked for less
    than the held-out good scans support."""
    default = meta.calibration[meta.default_mode]
    warning = far_warning(default, default.far)
    if warning:
        caution(f"model {meta.label}: {warning}")
    return (
        f"threshold ({meta.default_mode} mode): {default.threshold:.2f} good-scan spreads on either finding "
        f"(wrong part, defect), for at most {max(default.far, default.supported_far):.1%} false alarms "
        f"(split conformal on {len(default.good_scores)} held-out good scans)"
    )


@command(name="retrain-head")
def retrain_head(
    bundle: Annotated[Path, typer.Argument(help="A bundle folder that `train` wrote.")],
    out: Annotated[
        Path | None, typer.Option(help="Write the new bundle here (default: replace BUNDLE, which needs --force).")
    ] = None,
    calibration_only: Annotated[bool, typer.Option(help="Keep the head; only calibrate every mode again.")] = False,
    head_steps: Annotated[int, typer.Option(min=1, help="Segmentation head updates.")] = DEFAULTS.head_steps,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = DEFAULTS.device,
    force: Annotated[bool, typer.Option(help="Replace BUNDLE, or an existing non-empty --out.")] = False,
) -> None:
    """Give a bundle the segmentation head and calibration this version trains, keeping its GAN and
    encoder: minutes instead of a full training after an upgrade. Needs the scans it was trained on
    (the data its model.json names; built-in synthetic scans are made again)."""
    target = out or bundle
    try:
        read_meta(bundle, upgrade=True)
        if out is None and not force:
            raise ValueError(f"{bundle}: retrain-head replaces this bundle; give --force, or --out for a new one")
        if out is not None and out.resolve() != bundle.resolve():
            refuse_over_inputs(out, [bundle])
            if out.resolve().is_relative_to(bundle.resolve()):
                raise ValueError(f"{out}: inside the bundle it is made from; choose a folder beside it")
            if out.exists() and any(out.iterdir()) and not force:
                raise ValueError(f"{out}: already exists and is not empty (use --force)")
    except (BundleError, ValueError, OutputExistsError) as e:
        raise fail(str(e)) from None
    from anomaly_gan.train.data import TrainingError  # torch loads here, after the cheap checks
    from anomaly_gan.train.refresh import refresh_bundle

    try:
        with progress_display() as progress:
            new = refresh_bundle(bundle, target, calibration_only, device, head_steps, _Progress(progress))
    except (TrainingError, BundleError) as e:
        raise fail(f"{bundle}: {e}") from None
    console.print(
        f"bundle written to [bold]{target}[/] ({'calibration' if calibration_only else 'new head'}, "
        f"{new.meta.training.head_seconds / 60:.1f} min head, "
        f"{new.meta.training.calibration_seconds / 60:.1f} min calibration); {_threshold_line(new.meta)}"
    )
