"""The typer app and the few helpers every command shares (errors, console, progress)."""

from __future__ import annotations

import datetime
import functools
import math
import signal
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from anomaly_gan.bundle.meta import BundleError
from anomaly_gan.deps import MissingDependency
from anomaly_gan.fsutil import OutputExistsError, describe_os_error, prepare_output_dir

if TYPE_CHECKING:  # the networks load only when a command needs them, after its cheap checks
    import torch

    from anomaly_gan.detect.judge import DetectOptions, Judge

app = typer.Typer(
    help="Find defects in RGB-D scans with a DCGAN trained on good parts only.\n\n"
    "Typical use: `anomaly-gan train --shape sphere --wgan`, then `anomaly-gan detect scans/`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one clear line to stderr and return the Exit to raise."""
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def run_folder(root: Path) -> Path:
    """The default --out of a run: root/<date-time>."""
    return root / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def output_dir(path: Path, force: bool, inputs: Sequence[Path] = ()) -> Path:
    """Create the output folder (an existing non-empty one only with --force; never one that is or
    holds one of `inputs`) and check that it can be written, before any scan is scored."""
    try:
        return prepare_output_dir(path, force, inputs)
    except OutputExistsError as e:
        raise fail(str(e)) from None


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (a service manager's stop, `kill`) takes Ctrl-C's path: the same partial results,
    report and exit code 130, instead of dying with 143 and no report. An ignored SIGTERM stays
    ignored; outside the main thread (tests' runners) nothing is changed."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        yield
        return

    def interrupt(signum: int, frame) -> None:
        raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def command(**settings):
    """@app.command() that also turns the failures any verb can meet into one line and an exit code:
    a filesystem error (read-only, disk full, a file where a folder should be) or a missing system
    library -> exit 2; Ctrl-C or SIGTERM -> exit 130."""

    def register(verb):
        @functools.wraps(verb)
        def guarded(*args, **kwargs):
            try:
                with _sigterm_as_interrupt():
                    return verb(*args, **kwargs)
            except OSError as e:
                raise fail(describe_os_error(e)) from None
            except MissingDependency as e:
                raise fail(str(e)) from None
            except KeyboardInterrupt:
                errors.print("[yellow]interrupted[/]")
                raise typer.Exit(130) from None

        return app.command(**settings)(guarded)

    return register


def finite(value: float | None) -> float | None:
    """typer callback for numbers: NaN and infinities pass a min/max range check, so refuse them."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def warn(message: str) -> None:
    errors.print(f"[yellow]skipped:[/] {escape(message)}", highlight=False, soft_wrap=True)


def caution(message: str) -> None:
    errors.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


def caution_if_undertrained(label: str, reason: str) -> None:
    if reason:
        caution(f"model {label} looks undertrained ({reason}); its verdicts are unreliable, train longer")


RUNTIMES = ("torch", "onnx")


def load_detectors(
    paths: list[Path], options: DetectOptions, device: torch.device | None, skip_broken: bool, runtime: str = "torch"
) -> list[Judge]:
    """One detector per bundle (runtime torch: its TorchScript networks on `device`; onnx: its
    exported scorer.onnx, without importing torch; device None). Bundles found under --models that cannot be used
    are skipped with a warning (one broken folder must not stop a plant's inspection); a --model
    given by name is not."""
    detectors = []
    for path in paths:
        try:
            detectors.append(_detector(path, options, device, runtime))
            caution_if_undertrained(detectors[-1].label, detectors[-1].meta.undertrained())
            if detectors[-1].warning:
                caution(f"model {detectors[-1].label}: {detectors[-1].warning}")
        except BundleError as e:
            if not skip_broken:
                raise
            warn(f"{e}; scoring with the other bundles")
    if not detectors:
        raise BundleError(f"{paths[0].parent}: none of its {len(paths)} bundles can be used")
    return detectors


def _detector(path: Path, options: DetectOptions, device: torch.device | None, runtime: str) -> Judge:
    if runtime == "onnx":
        from anomaly_gan.detect.onnx_runtime import OnnxDetector

        return OnnxDetector(path, options)
    from anomaly_gan.bundle.store import load_bundle
    from anomaly_gan.detect.detector import Detector

    return Detector(load_bundle(path, device), options, device)


class LineProgress:
    """Progress for logs, CI and nohup (stdout not a terminal): one plain line per task at every
    tenth of the work or every 30 s, whichever comes first, and at the end. Same calls as rich's
    Progress (add_task, update)."""

    EVERY_S = 30.0

    @dataclass
    class _Task:
        description: str
        total: int | None
        started: float
        printed: float
        done: int = 0
        next_tenth: int = 1

    def __init__(self) -> None:
        self.tasks: list[LineProgress._Task] = []

    def add_task(self, description: str, total: int | None = None, status: str = "") -> int:
        now = time.monotonic()
        self.tasks.append(self._Task(description, total, now, now))
        return len(self.tasks) - 1

    def update(self, task: int, advance: int = 1, status: str = "") -> None:
        t, now = self.tasks[task], time.monotonic()
        t.done += advance
        tenth = bool(t.total) and t.done * 10 >= t.next_tenth * t.total
        if not (tenth or now - t.printed >= self.EVERY_S):
            return
        while t.total and t.done * 10 >= t.next_tenth * t.total:
            t.next_tenth += 1
        t.printed, elapsed = now, now - t.started
        line = f"{t.description}: {t.done}" + (f"/{t.total} ({t.done / t.total:.0%})" if t.total else "")
        line += f", {_clock(elapsed)} elapsed"
        if t.total and t.done < t.total:
            line += f", about {_clock(elapsed / t.done * (t.total - t.done))} left"
        console.print(line + (f"  {status}" if status else ""), highlight=False, soft_wrap=True)


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}:{seconds:02d}"


@contextmanager
def progress_display():
    """Rich progress with ETA and a status field on a terminal; plain periodic lines otherwise."""
    if not sys.stdout.isatty():
        yield LineProgress()
        return
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
    ]
    with Progress(*columns, console=console) as progress:
        yield progress


@contextmanager
def progress_bar(description: str, total: int | None):
    """One progress bar; yields advance(n=1, status="")."""
    with progress_display() as progress:
        task = progress.add_task(description, total=total, status="")

        def advance(n: int = 1, status: str = "") -> None:
            progress.update(task, advance=n, status=status)

        yield advance
