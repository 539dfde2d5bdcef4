"""Where a default training's time goes, and whether a faster one keeps its quality.

    python -m benchmarks.train_speed [--classes sphere rectangle] [--objectives gan wgan-gp] [--seeds 0 1]
                                     [--precisions auto fp32] [--profile 20 [--profile-sizes 64 128]]
                                     [--no-quality]

1. Stages: a default bundle per class, objective, seed and precision, trained on the Kinect block
   split's training blocks (into /tmp; an existing one is reused), and the wall minutes per stage
   it recorded (data, GAN, encoder, head, calibration, export).
2. Quality, on validation blocks only (never the test blocks): fast mode, the bundle's 75 held-out
   good scans against 3 evaluation-defect copies of each (stream 11, data/defects.py, a code path
   the head never trains on) and against every 4th training scan of the other classes; TPR at the
   bundle's own threshold.
3. With --profile N: N GAN, encoder and head steps of sphere `gan` under torch.profiler per
   precision and network size (--profile-sizes 64 128), the operators' CPU time split into forward,
   backward, optimiser, data movement, and what torch does not see (Python, the defect simulator);
   the simulator alone is timed beside, and each stage's minutes projected to its default steps.

Writes reports/kinect/train_speed.md and, with --profile, train_speed_profile.md (`--profile 15
--classes`, with no class: only the profile).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from anomaly_gan.bundle.meta import read_meta
from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.detect.detector import DetectOptions, Detector
from anomaly_gan.precision import resolve_precision
from anomaly_gan.train.config import TrainConfig
from anomaly_gan.train.data import class_folder, load_training_data
from anomaly_gan.train.head import build_head, defective_batch, train_head
from anomaly_gan.train.run import train
from anomaly_gan.train.trainer import build_state, train_encoder, train_gan
from benchmarks.kinect import (
    KINECT,
    SPLIT,
    VALIDATION_SEED,
    Report,
    auroc,
    block_split,
    machine,
    other_classes,
    validation_of,
)

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = Path("/tmp/anomaly-gan-train-speed")
STAGES = ("data", "gan", "encoder", "head", "calibration", "export")
CPU = torch.device("cpu")


@dataclass(frozen=True)
class Run:
    shape: str
    objective: str
    seed: int
    precision: str  # as asked: auto resolves to bf16 where the CPU computes it natively

    @property
    def folder(self) -> Path:
        return SCRATCH / f"{self.precision}-seed{self.seed}"  # holds <shape>-<objective>/

    @property
    def config(self) -> TrainConfig:
        return TrainConfig(name=self.shape, objective=self.objective, data=SPLIT / "train", out=self.folder,
                           seed=self.seed, precision=self.precision, device="cpu")

    @property
    def trained(self) -> bool:
        return (self.config.bundle_dir / "model.json").exists()

    def train(self) -> Path:
        config = self.config
        if not self.trained:
            train(config, lambda *a: None, force=True)
        return config.bundle_dir


def quality(bundle: Path, shape: str, train_root: Path) -> tuple[float, float, float]:
    """Injected-defect image AUROC, cross-class AUROC and TPR at the bundle's threshold, fast mode."""
    data = validation_of(bundle, shape, train_root)
    detector = Detector(load_bundle(bundle), DetectOptions("fast"), CPU)
    good, bad = detector.score(data.good), detector.score(data.bad)
    wrong = detector.score(other_classes(data, shape))
    return auroc(good.scores, bad.scores), auroc(good.scores, wrong.scores), float(np.mean(bad.anomalous))


def profile_steps(steps: int, precision: str, root: Path, size: int) -> dict[str, dict[str, float]]:
    """Milliseconds per step of sphere `gan` GAN, encoder and head training at `size` pixels, by
    kind of work, and the minutes each stage takes at its default length."""
    config = TrainConfig(name="sphere", data=root, precision=resolve_precision(precision, CPU), device="cpu",
                         image_size=size)
    defaults = {"GAN": config.total_steps, "encoder": config.encoder_steps, "head": config.head_steps}
    config = replace(config, steps=steps + 3, encoder_steps=steps + 3, head_steps=steps + 3)
    data = load_training_data(config, class_folder(config))
    objective = config.build_objective()
    state = build_state(config, config.net_config(objective.critic_norm), objective, CPU)
    x = config.channel_set.pick(data.train).contiguous()
    head = build_head(config, CPU)
    loops = {"GAN": lambda: train_gan(config, objective, state, x),
             "encoder": lambda: train_encoder(config, state, x),
             "head": lambda: train_head(config, head, state.final_generator, state.encoder, data.train)}
    result = {}
    for name, loop in loops.items():
        rows = loop()
        for _ in range(3):  # warm-up: oneDNN picks its kernels on the first calls
            next(rows)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            started = time.perf_counter()
            for _ in rows:
                pass
            wall = time.perf_counter() - started
        result[name] = _split(prof, wall, steps) | {"stage min": wall / steps * defaults[name] / 60}
    rng = np.random.default_rng(0)
    pool = data.train.numpy()
    started = time.perf_counter()
    for _ in range(steps):
        defective_batch(pool, config, rng)
    result["head"]["simulator (timed alone)"] = 1000 * (time.perf_counter() - started) / steps
    return result


def _split(prof, wall: float, steps: int) -> dict[str, float]:
    """Self CPU time of the profiled operators by kind, ms per step; the rest of the wall time is
    what torch did not see. On 2 cores with 2 threads, self times can add up to more than wall."""
    kinds: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        name = event.key
        if name.startswith("Optimizer.") or "adam" in name.lower() or "_foreach" in name:
            kind = "optimiser"
        elif "backward" in name.lower() or name.startswith("autograd::"):
            kind = "backward"
        elif name in ("aten::copy_", "aten::to", "aten::_to_copy", "aten::contiguous", "aten::cat", "aten::clone",
                      "aten::index", "aten::constant_pad_nd", "aten::stack"):
            kind = "data movement"
        else:
            kind = "forward"
        kinds[kind] += event.self_cpu_time_total / 1000 / steps
    seen = sum(kinds.values())
    return {"wall": 1000 * wall / steps, **kinds, "not seen by torch": max(0.0, 1000 * wall / steps - seen)}


def _profile_report(args: argparse.Namespace, root: Path) -> None:
    """reports/kinect/train_speed_profile.md: where a step's time goes, per size and precision."""
    report = Report(ROOT / "reports" / "kinect" / "train_speed_profile.md")
    report.add("# Where a training step's time goes: Kinect sphere `gan`\n", f"Machine: {machine()}.\n")
    report.add(f"## Where a step's time goes (sphere `gan`, {args.profile} profiled steps, ms per step)\n",
               "Profiler overhead included; self CPU times of 2 threads can add up to more than the wall time. "
               "Stage min: the wall time per step times the stage's default steps.\n",
               "| loop | pixels | precision | wall | forward | backward | optimiser | data movement "
               "| not seen by torch | simulator (timed alone) | stage min |", "|---" * 11 + "|")
    for size in args.profile_sizes:
        for precision in args.precisions:
            for loop, split in profile_steps(args.profile, precision, root, size).items():
                cells = [split.get(k, 0.0) for k in ("wall", "forward", "backward", "optimiser", "data movement",
                                                      "not seen by torch")]
                sim = f"{split['simulator (timed alone)']:.1f}" if loop == "head" else ""
                report.add(f"| {loop} | {size} | {resolve_precision(precision, CPU)} | "
                           + " | ".join(f"{c:.1f}" for c in cells) + f" | {sim} | {split['stage min']:.1f} |")
    report.add("")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", nargs="*", default=["sphere", "rectangle"],
                        help="`--classes` with no class: the profile only")
    parser.add_argument("--objectives", nargs="+", default=["gan", "wgan-gp"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--precisions", nargs="+", default=["auto"], help="auto, bf16 and/or fp32")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="also profile N GAN and head steps")
    parser.add_argument("--profile-sizes", type=int, nargs="+", default=[64], help="network sizes to profile at")
    parser.add_argument("--only-trained", action="store_true", help="skip the runs not trained yet")
    parser.add_argument("--no-quality", action="store_true", help="stage minutes only")
    args = parser.parse_args()
    roots = block_split(KINECT, SPLIT)
    if args.profile:
        _profile_report(args, roots["train"])
    if not args.classes:
        return
    report = Report(ROOT / "reports" / "kinect" / "train_speed.md")
    report.add("# Training speed and quality: Kinect block split\n",
               f"Machine: {machine()}; precision auto = {resolve_precision('auto', CPU)} here. "
               "Default settings (64 px, 1,500 `gan` / 600 `wgan-gp` GAN steps, 800 encoder, 2,400 head steps). "
               f"Quality on validation blocks, fast mode: injected = image AUROC against evaluation defects (stream "
               f"{VALIDATION_SEED}, 3 copies of each of the 75 held-out good scans); cross-class = against every 4th "
               "training scan of the other classes; TPR at the bundle's own threshold.\n")
    report.add("## Minutes per stage and validation quality\n",
               "| class | objective | seed | precision | " + " | ".join(STAGES) + " | total min | injected AUROC "
               "| cross-class AUROC | TPR |", "|---" * (8 + len(STAGES)) + "|")
    for shape in args.classes:
        for objective in args.objectives:
            for seed in args.seeds:
                for precision in args.precisions:
                    run = Run(shape, objective, seed, precision)
                    if args.only_trained and not run.trained:
                        continue
                    folder = run.train()
                    training = read_meta(folder).training
                    stages = [training.stages.get(s, 0.0) / 60 for s in STAGES]
                    figures = () if args.no_quality else quality(folder, shape, roots["train"])
                    cells = [f"{v:.3f}" for v in figures] or ["", "", ""]
                    report.add(f"| {shape} | {objective} | {seed} | {training.config.get('precision', 'fp32')} | "
                               + " | ".join(f"{m:.2f}" for m in stages) + f" | {training.minutes:.1f} | "
                               + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
