"""The typer app and the few helpers every command shares (errors, console, progress)."""

from __future__ import annotations

import datetime
import functools
import sys
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from anomaly_gan.deps import MissingDependency
from anomaly_gan.fsutil import OutputExistsError, check_writable, describe_os_error, prepare_output_dir

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
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def run_folder(root: Path) -> Path:
    """The default --out of a run: root/<date-time>."""
    return root / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def output_dir(path: Path, force: bool) -> Path:
    """Create the output folder (an existing non-empty one only with --force) and check that it can
    be written, before any scan is scored."""
    try:
        folder = prepare_output_dir(path, force)
        check_writable(folder)
        return folder
    except OutputExistsError as e:
        raise fail(str(e)) from None


def command(**settings):
    """@app.command() that also turns the failures any verb can meet into one line and an exit code:
    a filesystem error (read-only, disk full, a file where a folder should be) or a missing system
    library -> exit 2; Ctrl-C or SIGTERM -> exit 130."""
    def register(verb):
        @functools.wraps(verb)
        def guarded(*args, **kwargs):
            try:
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


def warn(message: str) -> None:
    errors.print(f"[yellow]skipped:[/] {message}", highlight=False, soft_wrap=True)


@contextmanager
def progress_display():
    """Rich progress with ETA and a status field (quiet when stdout is not a terminal, e.g. CI)."""
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[status]}")]
    with Progress(*columns, console=console, disable=not sys.stdout.isatty()) as progress:
        yield progress


@contextmanager
def progress_bar(description: str, total: int | None):
    """One progress bar; yields advance(n=1, status="")."""
    with progress_display() as progress:
        task = progress.add_task(description, total=total, status="")

        def advance(n: int = 1, status: str = "") -> None:
            progress.update(task, advance=n, status=status)

        yield advance
