"""Where a default training's time goes, and whether a faster one keeps its quality.

    python -m benchmarks.train_speed [--classes sphere rectangle] [--objectives gan wgan-gp] [--seeds 0 1]
                                     [--precisions auto fp32] [--n-critic 4 --gp-every 4]
                                     [--profile 20 [--profile-sizes 64 128]]
                                     [--no-quality]

1. Stages: a default bundle per class, objective, seed and precision (WGANs: with --n-critic and
   --gp-every, another critic schedule than the default), trained on the Kinect block
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

Each training measured is kept in reports/kinect/train_speed.json (the bundles in /tmp are not), and
reports/kinect/train_speed.md is rendered from all of it, old beside new (fp32 beside bf16; the
WGAN-GP's former critic schedule beside the current default); with
--profile also train_speed_profile.md (`--profile 15 --classes`, with no class: only the profile).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from anomaly_gan.bundle.meta import read_meta
from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.detect.detector import Detector
from anomaly_gan.detect.judge import DetectOptions
from anomaly_gan.fsutil import atomic_write_text
from anomaly_gan.precision import resolve_precision
from anomaly_gan.train.config import TrainConfig
from anomaly_gan.train.data import class_folder, load_training_data
from anomaly_gan.train.head import build_head, defective_batch, train_head
from anomaly_gan.train.objective_settings import DEFAULT_SETTINGS, ObjectiveSettings, with_switches
from anomaly_gan.train.run import train
from anomaly_gan.train.trainer import train_encoder, train_gan
from benchmarks.protocol import (
    KINECT,
    ROOT,
    SPLIT,
    VALIDATION_SEED,
    Report,
    auroc,
    block_split,
    machine,
    other_classes,
    scratch,
    untrained_state,
    validation_of,
)

SCRATCH = scratch("train-speed")
STAGES = ("data", "gan", "encoder", "head", "calibration", "export")
CPU = torch.device("cpu")


@dataclass(frozen=True)
class Run:
    shape: str
    objective: str
    seed: int
    precision: str  # as asked: auto resolves to bf16 where the CPU computes it natively
    n_critic: int | None = None  # WGANs: critic updates per generator update; None = the default
    gp_every: int | None = None  # wgan-gp: the penalty on every N-th critic update; None = the default

    @property
    def settings(self) -> ObjectiveSettings:
        return with_switches(self.objective, n_critic=self.n_critic, gp_every=self.gp_every)

    @property
    def folder(self) -> Path:
        """Holds <shape>-<objective>/; a WGAN's folder names its critic schedule, so that a bundle
        trained before a default changed is not taken for one of the new default."""
        s = self.settings
        critic = f"-critic{s.n_critic}-gp{s.gp_every}" if self.objective.startswith("wgan") else ""
        return SCRATCH / f"{self.precision}-seed{self.seed}{critic}"

    @property
    def config(self) -> TrainConfig:
        return TrainConfig(
            name=self.shape,
            objective=self.objective,
            data=SPLIT / "train",
            out=self.folder,
            seed=self.seed,
            precision=self.precision,
            device="cpu",
            objective_settings=self.settings,
        )

    @property
    def trained(self) -> bool:
        return (self.config.bundle_dir / "model.json").exists()

    def train(self) -> Path:
        config = self.config
        if not self.trained:
            train(config, lambda *a: None, force=True)
        return config.bundle_dir


LEDGER = ROOT / "reports" / "kinect" / "train_speed.json"


@dataclass(frozen=True)
class Measured:
    """One training's stage minutes and validation quality, as the ledger keeps it."""

    shape: str
    objective: str
    seed: int
    precision: str  # resolved: bf16 or fp32
    stages: dict[str, float]  # minutes
    minutes: float
    injected: float | None
    cross_class: float | None
    tpr: float | None
    note: str = ""
    n_critic: int = 1  # critic updates per generator update, as trained
    gp_every: int = 1  # wgan-gp: the penalty on every N-th critic update

    @property
    def key(self) -> tuple[str, str, int, str, int, int]:
        return self.shape, self.objective, self.seed, self.precision, self.n_critic, self.gp_every

    @property
    def critic(self) -> str:
        return f"{self.n_critic}" + (f", penalty on every {self.gp_every}" if self.gp_every > 1 else "")


def read_ledger() -> dict[tuple, Measured]:
    """Rows measured in earlier runs: the bundles live in /tmp, the figures must not."""
    rows = json.loads(LEDGER.read_text()) if LEDGER.exists() else []
    return {m.key: m for m in (Measured(**row) for row in rows)}


def write_ledger(ledger: dict[tuple, Measured]) -> None:
    rows = [asdict(m) for m in sorted(ledger.values(), key=lambda m: m.key)]
    atomic_write_text(LEDGER, json.dumps(rows, indent=1) + "\n")


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
    config = TrainConfig(
        name="sphere", data=root, precision=resolve_precision(precision, CPU), device="cpu", image_size=size
    )
    defaults = {"GAN": config.total_steps, "encoder": config.encoder_steps, "head": config.head_steps}
    config = replace(config, steps=steps + 3, encoder_steps=steps + 3, head_steps=steps + 3)
    data = load_training_data(config.data_stage, class_folder(config))
    objective, state = untrained_state(config, CPU)
    x = config.channel_set.pick(data.train).contiguous()
    head = build_head(config.head_stage, CPU)
    loops = {
        "GAN": lambda: train_gan(config.gan_stage, objective, state, x),
        "encoder": lambda: train_encoder(config.encoder_stage, state, x),
        "head": lambda: train_head(config.head_stage, head, state.final_generator, state.encoder, data.train),
    }
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
        defective_batch(pool, config.head_stage, rng)
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
        elif name in (
            "aten::copy_",
            "aten::to",
            "aten::_to_copy",
            "aten::contiguous",
            "aten::cat",
            "aten::clone",
            "aten::index",
            "aten::constant_pad_nd",
            "aten::stack",
        ):
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
    report.add(
        f"## Where a step's time goes (sphere `gan`, {args.profile} profiled steps, ms per step)\n",
        "Profiler overhead included; self CPU times of 2 threads can add up to more than the wall time. "
        "Stage min: the wall time per step times the stage's default steps.\n",
        "| loop | pixels | precision | wall | forward | backward | optimiser | data movement "
        "| not seen by torch | simulator (timed alone) | stage min |",
        "|---" * 11 + "|",
    )
    for size in args.profile_sizes:
        for precision in args.precisions:
            for loop, split in profile_steps(args.profile, precision, root, size).items():
                cells = [
                    split.get(k, 0.0)
                    for k in ("wall", "forward", "backward", "optimiser", "data movement", "not seen by torch")
                ]
                sim = f"{split['simulator (timed alone)']:.1f}" if loop == "head" else ""
                report.add(
                    f"| {loop} | {size} | {resolve_precision(precision, CPU)} | "
                    + " | ".join(f"{c:.1f}" for c in cells)
                    + f" | {sim} | {split['stage min']:.1f} |"
                )
    report.add("")


FORMER_CRITIC = {"n_critic": 5, "gp_every": 1}  # wgan-gp's schedule before the lazy penalty


def _critic_report(steps: int, root: Path) -> None:
    """reports/kinect/train_speed_critic.md: a sphere `wgan-gp` GAN step under the former and the
    current critic schedule, alternated three times in one process (the host's speed drifts)."""
    schedules = {"5 critic updates, each penalised (former)": FORMER_CRITIC, "today's default": {}}
    base = TrainConfig(
        name="sphere", objective="wgan-gp", data=root, precision=resolve_precision("auto", CPU), device="cpu"
    )
    scans = base.channel_set.pick(load_training_data(base.data_stage, class_folder(base)).train).contiguous()
    seconds: dict[str, list[float]] = defaultdict(list)
    for _ in range(3):
        for name, switches in schedules.items():
            config = replace(base, objective_settings=with_switches("wgan-gp", **switches), steps=steps + 5)
            objective, state = untrained_state(config, CPU)
            rows = train_gan(config.gan_stage, objective, state, scans)
            seconds[name] += [row["seconds"] for i, row in enumerate(rows) if i >= 5]  # after warm-up
    report = Report(ROOT / "reports" / "kinect" / "train_speed_critic.md")
    report.add(
        "# The `wgan-gp` critic schedule: one GAN step, former against current, in one run\n",
        f"Machine: {machine()}; sphere, batch 64, {resolve_precision('auto', CPU)}; {steps} steps after 5 of warm-up, "
        f"three times each, alternated. `python -m benchmarks train_speed --critic-steps {steps} --classes`.\n",
        "| schedule | median ms per GAN step | GAN stage at 600 steps, min |",
        "|---|---|---|",
    )
    for name, values in seconds.items():
        median = float(np.median(values))
        report.add(f"| {name} | {1000 * median:.0f} | {median * 600 / 60:.2f} |")
    report.add("")


def measure(run: Run, train_root: Path, with_quality: bool) -> Measured:
    folder = run.train()
    training = read_meta(folder).training
    figures = quality(folder, run.shape, train_root) if with_quality else (None, None, None)
    settings = training.config["objective_settings"]
    return Measured(
        run.shape,
        run.objective,
        run.seed,
        training.config.get("precision", "fp32"),
        {s: round(training.stages.get(s, 0.0) / 60, 2) for s in STAGES},
        round(training.minutes, 1),
        *(None if v is None else round(v, 3) for v in figures),
        n_critic=settings["n_critic"],
        gp_every=settings.get("gp_every", 1),  # bundles trained before the switch existed
    )


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _render(ledger: dict[tuple, Measured]) -> None:
    """The whole table from the ledger, and old beside new (fp32 / bf16, former / current critic)
    where both were measured."""
    report = Report(ROOT / "reports" / "kinect" / "train_speed.md")
    report.add(
        "# Training speed and quality: Kinect block split\n",
        f"Machine: {machine()}; precision auto = {resolve_precision('auto', CPU)} here. "
        "Default settings (64 px, 1,500 `gan` / 600 `wgan-gp` GAN steps, 800 encoder, 2,400 head steps). "
        f"Quality on validation blocks, fast mode: injected = image AUROC against evaluation defects (stream "
        f"{VALIDATION_SEED}, 3 copies of each of the 75 held-out good scans); cross-class = against every 4th "
        "training scan of the other classes; TPR at the bundle's own threshold. fp32 is the training as it "
        "was before bf16 (`--precision fp32`). Each row is one training, measured alone on the machine "
        f"unless its note says otherwise; rows kept in {LEDGER.name}.\n",
    )
    report.add(
        "## Minutes per stage and validation quality\n",
        "Critic: critic updates per generator update (`gan`: 1), and for `wgan-gp` how often the gradient "
        "penalty is applied (every update unless stated).\n",
        "| class | objective | critic | seed | precision | " + " | ".join(STAGES) + " | total min | injected AUROC "
        "| cross-class AUROC | TPR | note |",
        "|---" * (10 + len(STAGES)) + "|",
    )
    for m in sorted(ledger.values(), key=lambda m: m.key):
        report.add(
            f"| {m.shape} | {m.objective} | {m.critic} | {m.seed} | {m.precision} | "
            + " | ".join(f"{m.stages[s]:.2f}" for s in STAGES)
            + f" | {m.minutes:.1f} | "
            + " | ".join(_cell(v) for v in (m.injected, m.cross_class, m.tpr))
            + f" | {m.note} |"
        )
    report.add(
        "\n## Old and new side by side\n",
        "Old: fp32 (before bf16), or `wgan-gp` with its former critic schedule (5 updates, the penalty on each); "
        "new: bf16 with today's defaults. fp32 and bf16 were timed on the same day, the two critic schedules "
        "were not (see the notes): their GAN steps timed in one run are in train_speed_critic.md.\n",
        "| class | objective | seed | old | minutes old / new | injected AUROC old / new "
        "| cross-class AUROC old / new | TPR old / new |",
        "|---|---|---|---|---|---|---|---|",
    )
    for new in sorted(ledger.values(), key=lambda m: m.key):
        current = DEFAULT_SETTINGS[new.objective]
        if new.precision != "bf16" or (new.n_critic, new.gp_every) != (current.n_critic, current.gp_every):
            continue
        olds = {"fp32": new.key[:3] + ("fp32",) + new.key[4:]}
        if new.objective == "wgan-gp":
            olds["critic 5, penalty on each"] = new.key[:4] + (5, 1)
        for label, key in olds.items():
            old = ledger.get(key)
            if old and old is not new:
                report.add(
                    f"| {new.shape} | {new.objective} | {new.seed} | {label} | {old.minutes:.1f} / {new.minutes:.1f} | "
                    f"{_cell(old.injected)} / {_cell(new.injected)} | "
                    f"{_cell(old.cross_class)} / {_cell(new.cross_class)} | {_cell(old.tpr)} / {_cell(new.tpr)} |"
                )
    report.add("")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--classes", nargs="*", default=["sphere", "rectangle"], help="`--classes` with no class: the profile only"
    )
    parser.add_argument("--objectives", nargs="+", default=["gan", "wgan-gp"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--precisions", nargs="+", default=["auto"], help="auto, bf16 and/or fp32")
    parser.add_argument("--n-critic", type=int, help="WGANs: critic updates per generator update (default: theirs)")
    parser.add_argument("--gp-every", type=int, help="wgan-gp: the penalty on every N-th critic update (default: its)")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="also profile N GAN and head steps")
    parser.add_argument("--profile-sizes", type=int, nargs="+", default=[64], help="network sizes to profile at")
    parser.add_argument(
        "--critic-steps", type=int, default=0, metavar="N", help="also time N wgan-gp steps, former and current critic"
    )
    parser.add_argument("--only-trained", action="store_true", help="skip the runs not trained yet")
    parser.add_argument("--no-quality", action="store_true", help="stage minutes only")
    parser.add_argument("--note", default="", help="kept with the rows measured now (e.g. what else ran)")
    args = parser.parse_args()
    roots = block_split(KINECT, SPLIT)
    if args.profile:
        _profile_report(args, roots["train"])
    if args.critic_steps:
        _critic_report(args.critic_steps, roots["train"])
    if not args.classes:
        return
    ledger = read_ledger()
    for shape in args.classes:
        for objective in args.objectives:
            for seed in args.seeds:
                for precision in args.precisions:
                    wgan = objective.startswith("wgan")
                    gp = objective == "wgan-gp"
                    run = Run(
                        shape,
                        objective,
                        seed,
                        precision,
                        args.n_critic if wgan else None,
                        args.gp_every if gp else None,
                    )
                    if args.only_trained and not run.trained:
                        continue
                    measured = replace(measure(run, roots["train"], not args.no_quality), note=args.note)
                    ledger[measured.key] = measured
                    write_ledger(ledger)
    _render(ledger)


if __name__ == "__main__":
    main()
