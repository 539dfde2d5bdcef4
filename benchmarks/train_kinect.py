"""Training budget on the Kinect scans: minutes, steps/s and images/s per objective.

    python -m benchmarks.train_kinect [--shape sphere] [--probe 20]

For each objective a probe of a few GAN and encoder steps at default settings, on the block split's
training scans, measures the step rates; a default run's minutes are projected from them (GAN steps
x GAN step time + encoder steps x encoder step time + calibration as recorded). Where a full bundle
exists in models/kinect-split (kinect_table.py and detect_kinect.py train them), the minutes it
recorded are printed beside. Writes reports/kinect/train_benchmark.md. Budget: 15 minutes a class.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace

import torch

from anomaly_gan.bundle.meta import TrainingSummary, read_meta
from anomaly_gan.precision import resolve_precision
from anomaly_gan.train.config import TrainConfig
from anomaly_gan.train.data import load_training_data
from anomaly_gan.train.objectives import OBJECTIVES
from anomaly_gan.train.trainer import train_encoder, train_gan
from benchmarks.protocol import KINECT, MODELS, ROOT, SPLIT, Report, block_split, machine, untrained_state

WARM_UP = 3


def probe(config: TrainConfig, x: torch.Tensor, steps: int) -> tuple[float, float, float]:
    """Seconds per GAN step, real images the critic sees per second, seconds per encoder step."""
    probe_config = replace(
        config,
        steps=WARM_UP + steps,
        encoder_steps=WARM_UP + steps,
        precision=resolve_precision(config.precision, x.device),
    )
    objective, state = untrained_state(probe_config, x.device)
    gan = [row["seconds"] for row in train_gan(probe_config.gan_stage, objective, state, x)][WARM_UP:]
    critic_updates = sum(objective.n_critic for s in range(WARM_UP, WARM_UP + steps) if objective.update_critic(s))
    encoder = [row["seconds"] for row in train_encoder(probe_config.encoder_stage, state, x)][WARM_UP:]
    return statistics.mean(gan), critic_updates * config.batch_size / sum(gan), statistics.mean(encoder)


def recorded(shape: str, objective: str) -> TrainingSummary | None:
    folder = MODELS / f"{shape}-{objective}"
    return read_meta(folder).training if (folder / "model.json").exists() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="sphere")
    parser.add_argument("--probe", type=int, default=20, help="measured steps per objective")
    args = parser.parse_args()
    roots = block_split(KINECT, SPLIT)
    base = TrainConfig(name=args.shape, data=roots["train"])
    data = load_training_data(base.data_stage, roots["train"] / args.shape)
    trained = {o: recorded(args.shape, o) for o in OBJECTIVES}
    calibration = [t.calibration_seconds for t in trained.values() if t]
    calibration_min = statistics.mean(calibration) / 60 if calibration else 0.0
    report = Report(ROOT / "reports" / "kinect" / "train_benchmark.md")
    report.add(
        f"# Training budget: Kinect {args.shape} scans, default settings\n",
        f"Machine: {machine()}. {data.train.shape[0]} training scans (block split, minus the "
        f"validation blocks), batch {base.batch_size}, width {base.width}; step rates from a {args.probe}-step "
        f"probe after {WARM_UP} warm-up steps; projected minutes = GAN steps x GAN step time + "
        f"{base.encoder_steps} encoder steps x encoder step time + calibration "
        f"({calibration_min:.1f} min, as recorded by the trained bundles). Budget: 15 minutes.\n",
        "| objective | default steps | GAN steps/s | real images/s | encoder steps/s | projected min | "
        "recorded min (full run) |",
        "|---|---|---|---|---|---|---|",
    )
    for name, objective in OBJECTIVES.items():
        config = replace(base, objective=name)
        gan_s, images, encoder_s = probe(config, data.train, args.probe)
        steps = objective.default_steps
        projected = (steps * gan_s + base.encoder_steps * encoder_s) / 60 + calibration_min
        full = trained[name]
        full_text = f"{full.minutes:.1f}" if full else "not trained"
        row = (
            f"| {name} | {steps} | {1 / gan_s:.2f} | {images:.0f} | {1 / encoder_s:.1f} | {projected:.1f} | "
            f"{full_text} |"
        )
        report.add(row)


if __name__ == "__main__":
    main()
