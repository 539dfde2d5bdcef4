"""Flat memory and end-to-end speed of `anomaly-gan detect --mode fast` on large folders.

    python -m benchmarks.detect_memory [--sizes 1000 10000 100000] [--model DIR] [--out DIR]

Folders of N scans are made by linking the 375 real Kinect sphere scans again and again under new
names (the scans are read and scored each time; only the disk holds them once). Each size runs the
CLI as its own process, with default output (panels for flagged and top-500 scans, report with
500 pictures); its peak RSS comes from that process's rusage. The core rate is Detector.score on
already decoded batches in this process, measured in the same run. Writes detect_memory.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.data.layouts import find_scans, iter_scans
from anomaly_gan.detect.detector import Detector
from anomaly_gan.detect.judge import DetectOptions
from anomaly_gan.report.records import read_results
from benchmarks.protocol import KINECT, MODELS, ROOT, Report, machine, scratch

WORK = scratch("detect-memory")


def linked_folder(source: Path, count: int) -> Path:
    """count scans in the seed layout, symlinks to the source's scans in turn."""
    folder = WORK / f"scans-{count}"
    if (folder / "RGB_Final").is_dir() and len(os.listdir(folder / "RGB_Final")) == count:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    refs = find_scans(source).refs
    for sub in ("RGB_Final", "Depth_Final"):
        (folder / sub).mkdir(parents=True)
    for i in range(count):
        ref = refs[i % len(refs)]
        name = f"{i:06d}"
        os.symlink(ref.rgb, folder / "RGB_Final" / f"{name}{ref.rgb.suffix}")
        os.symlink(ref.depth, folder / "Depth_Final" / f"{name}{ref.depth.suffix}")
    return folder


def core_rate(model: Path, source: Path, batch: int = 64, repeats: int = 3) -> float:
    """Scans/s of scoring alone: decoded scans, fast mode, the CLI's batch size."""
    detector = Detector(load_bundle(model), DetectOptions("fast", batch), torch.device("cpu"))
    scans = [s for _, s in iter_scans(find_scans(source).refs)]
    detector.score(scans[:batch])  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        detector.score(scans)
    return repeats * len(scans) / (time.perf_counter() - started)


def run_cli(folder: Path, model: Path, out: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one `anomaly-gan detect` process."""
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "anomaly_gan",
            "detect",
            str(folder),
            "--model",
            str(model),
            "--mode",
            "fast",
            "--out",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"detect failed on {folder}: {child.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--model", type=Path, default=MODELS / "sphere-gan")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "kinect")
    args = parser.parse_args()
    source = KINECT / "sphere"
    report = Report(args.out / "detect_memory.md")
    report.add(
        "# detect at scale: memory, speed, report size",
        "",
        f"Machine: {machine()}. Bundle: {args.model} (Kinect sphere, fast mode). Scans: the 375 real Kinect "
        "sphere scans, linked repeatedly under new names. Default output: panels for flagged and top-500 "
        "scans, report with 500 pictures.",
        "",
    )
    core = core_rate(args.model, source)
    report.add(
        f"Core (Detector.score on decoded batches of 64, same run): {core:.0f} scans/s",
        "",
        "| scans | wall s | scans/s | of core | peak RSS MiB | vs first | report.html MiB | panels |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    )
    first = None
    for count in args.sizes:
        folder = linked_folder(source, count)
        out = WORK / f"out-{count}"
        seconds, rss = run_cli(folder, args.model, out)
        first = first or rss
        assert read_results(out).scans == count
        panels = len(list((out / "maps").glob("*.jpg")))
        size = (out / "report.html").stat().st_size / 2**20
        report.add(
            f"| {count} | {seconds:.1f} | {count / seconds:.0f} | {count / seconds / core:.0%} | {rss:.0f} | "
            f"{rss / first - 1:+.1%} | {size:.1f} | {panels} |"
        )


if __name__ == "__main__":
    main()
