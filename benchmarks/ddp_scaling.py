"""Data-parallel training speed: GAN steps/s and images/s for 1 and 2 torchrun processes.

    python -m benchmarks.ddp_scaling [--processes 1 2] [--steps 60] [--objective gan] [--out DIR]

Each run is `torchrun --nproc-per-node P -m anomaly_gan train` on the Kinect sphere scans with
default networks and the default global batch (each process takes batch/P), threads per process set
so that all processes together use the machine's cores. Step time is read from the bundle's
train_log.jsonl (pure GAN step seconds, first 10 steps left out as warm-up). On a CUDA machine each
process takes its own GPU (LOCAL_RANK). Writes ddp_scaling.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from anomaly_gan.train.config import TrainConfig
from benchmarks.protocol import KINECT, ROOT, Report, machine, scratch

WORK = scratch("ddp-scaling")
WARM_UP = 10


def gan_step_seconds(processes: int, steps: int, objective: str) -> float:
    out = WORK / f"p{processes}"
    shutil.rmtree(out, ignore_errors=True)
    threads = max(1, (os.cpu_count() or 1) // processes)
    command = [
        str(Path(sys.executable).with_name("torchrun")),
        "--nproc-per-node",
        str(processes),
        "-m",
        "anomaly_gan",
        "train",
        "--shape",
        "sphere",
        "--data",
        str(KINECT),
        "--objective",
        objective,
        "--steps",
        str(steps),
        "--encoder-steps",
        "1",
        "--no-head",
        "--out",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if done.returncode != 0:
        raise SystemExit(f"training with {processes} processes failed:\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
    rows = [json.loads(line) for line in (out / f"sphere-{objective}" / "train_log.jsonl").read_text().splitlines()]
    return float(np.mean([r["seconds"] for r in rows if r["phase"] == "gan" and r["step"] > WARM_UP]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--objective", default="gan")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "kinect")
    args = parser.parse_args()
    batch = TrainConfig(name="sphere").batch_size
    report = Report(args.out / "ddp_scaling.md")
    report.add(
        "# Data-parallel training: steps/s by process count",
        "",
        f"Machine: {machine()}. Kinect sphere scans, objective {args.objective}, default networks, global "
        f"batch {batch}, {args.steps} GAN steps per run (first {WARM_UP} left out).",
        "",
        "| processes | threads each | batch each | GAN steps/s | images/s | speed-up |",
        "|---:|---:|---:|---:|---:|---:|",
    )
    base = None
    for p in args.processes:
        seconds = gan_step_seconds(p, args.steps, args.objective)
        base = base or seconds
        report.add(
            f"| {p} | {max(1, (os.cpu_count() or 1) // p)} | {batch // p} | {1 / seconds:.2f} | "
            f"{batch / seconds:.0f} | {base / seconds:.2f}x |"
        )


if __name__ == "__main__":
    main()
