"""Verbs about data: synth, preprocess, info."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from anomaly_gan.cli.app import command, console, fail, finite, output_dir, progress_bar, warn
from anomaly_gan.data.camera import Intrinsics
from anomaly_gan.data.digits import write_digits
from anomaly_gan.data.info import summarise
from anomaly_gan.data.layouts import find_scans, iter_scans
from anomaly_gan.data.preprocess import PreprocessConfig, preprocess_scan
from anomaly_gan.data.scan import ScanError
from anomaly_gan.data.synth import SHAPES
from anomaly_gan.data.synth_sets import DEFECT_SOURCES, inject_into, synthesise
from anomaly_gan.data.writers import write_scan
from anomaly_gan.deps import open3d


def _intrinsics(text: str | None) -> Intrinsics | None:
    try:
        return Intrinsics.parse(text) if text else None
    except ValueError as e:
        raise fail(f"--intrinsics: {e}") from None


@command()
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write; becomes a class root (OUT/<shape>/...).")],
    shape: Annotated[
        list[str],
        typer.Option(
            help=f"Shape(s) to render: {', '.join(SHAPES)}; or digits: "
            "scikit-learn's handwritten digits as OUT/0 ... OUT/9 "
            "grayscale image folders."
        ),
    ] = ["sphere"],  # noqa: B006
    count: Annotated[int, typer.Option(min=1, help="Scans per shape.")] = 300,
    size: Annotated[int, typer.Option(min=8, max=1024, help="Image side in pixels (digits: upsampled from 8x8).")] = 64,
    defect_rate: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Fraction of scans with a defect; >0 writes an MVTec-style "
            "test tree (test/good, test/<defect> with gt/ masks). Default 0, or 0.5 with --from.",
        ),
    ] = None,
    defects: Annotated[
        str,
        typer.Option(
            help="Where rendered defects are made: mesh (dent, chunk, foreign, "
            "stain made on the 3-D part before ray casting) or image "
            "(data/defects.py's seven kinds injected into the rendered "
            "images, as --from does)."
        ),
    ] = "mesh",
    from_: Annotated[
        Path | None,
        typer.Option("--from", help="Inject defects into these real good scans (any layout) instead of rendering."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Same seed, same scans.")] = 0,
    force: Annotated[bool, typer.Option(help="Replace OUT (or OUT/<shape>) if it exists.")] = False,
) -> None:
    """Render synthetic RGB-D scans (boxes, cylinders, spheres), optionally with defects + masks.

    `--shape digits` writes the 1,797 handwritten digits scikit-learn ships (no download).
    """
    started, written, skipped = time.perf_counter(), 0, []
    if shape == ["digits"]:
        output_dir(out, force)
        with progress_bar("writing digits", 1797) as advance:
            for _ in write_digits(out, size):
                written += 1
                advance()
    elif from_ is not None:
        try:
            found = find_scans(from_)
        except ScanError as e:
            raise fail(str(e)) from None
        output_dir(out, force, [from_])
        skipped = list(found.skipped)
        with progress_bar("injecting", len(found.refs)) as advance:
            for result in inject_into(found.refs, out, 0.5 if defect_rate is None else defect_rate, seed):
                if isinstance(result, ScanError):
                    skipped.append(str(result))
                else:
                    written += 1
                advance()
    else:
        unknown = [s for s in shape if s not in SHAPES]
        if unknown:
            raise fail(f"unknown shape {unknown[0]!r}; choose from {', '.join(SHAPES)}")
        if defects not in DEFECT_SOURCES:
            raise fail(f"--defects {defects}: choose from {', '.join(DEFECT_SOURCES)}")
        for name in shape:
            target = output_dir(out / name, force)
            with progress_bar(f"rendering {name}", count) as advance:
                for _ in synthesise(target, name, count, seed, defect_rate or 0.0, size=size, source=defects):
                    written += 1
                    advance()
    elapsed = time.perf_counter() - started
    for line in skipped:
        warn(line)
    console.print(
        f"wrote {written} scans to {out} in {elapsed:.1f} s ({written / elapsed:.0f} scans/s)"
        + (f"; {len(skipped)} skipped" if skipped else "")
    )
    if skipped:
        raise typer.Exit(2)


@command()
def preprocess(
    raw: Annotated[Path, typer.Argument(help="Full-frame captures: colour + 16-bit depth (mm), any layout.")],
    out: Annotated[Path, typer.Argument(help="Where to write 64x64 object scans (seed layout).")],
    near: Annotated[float, typer.Option(callback=finite, help="Nearest depth kept, mm.")] = 300.0,
    far: Annotated[float, typer.Option(callback=finite, help="Farthest depth kept, mm.")] = 2000.0,
    margin: Annotated[
        float, typer.Option(callback=finite, help="Crop margin, fraction of the object size (0 to 4).")
    ] = 0.75,
    size: Annotated[int, typer.Option(help="Output image size (8 to 1024).")] = 64,
    intrinsics: Annotated[
        str | None, typer.Option(help="Camera 'width,height,fx,fy,cx,cy' (default: 60-degree Kinect-like).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
) -> None:
    """Cut depth range, remove the supporting plane, isolate the object, crop and resize."""
    if not 0 <= near < far:
        raise fail(f"--near {near:g} and --far {far:g}: need 0 <= near < far (millimetres)")
    if not 0 <= margin <= 4:
        raise fail(f"--margin {margin:g}: choose 0 to 4 (a fraction of the object size)")
    if not 8 <= size <= 1024:
        raise fail(f"--size {size}: choose 8 to 1024 pixels")
    config = PreprocessConfig(near, far, margin=margin, size=size, intrinsics=_intrinsics(intrinsics))
    open3d()  # plane removal needs it; a missing libusb is one line, before any work
    try:
        found = find_scans(raw)
    except ScanError as e:
        raise fail(str(e)) from None
    output_dir(out, force, [raw])
    done, skipped = 0, list(found.skipped)
    with progress_bar("preprocessing", len(found.refs)) as advance:
        for _, scan in iter_scans(found.refs):
            try:
                if isinstance(scan, ScanError):
                    raise scan
                write_scan(preprocess_scan(scan, config), out, "seed")
                done += 1
            except ScanError as e:
                skipped.append(str(e))
            advance()
    for line in skipped:
        warn(line)
    console.print(f"wrote {done} scans to {out}" + (f"; {len(skipped)} skipped" if skipped else ""))
    if skipped:
        raise typer.Exit(2)


@command()
def info(
    path: Annotated[Path, typer.Argument(help="A class root, a class folder or a file.")],
    all_problems: Annotated[bool, typer.Option("--all", help="List every problem.")] = False,
) -> None:
    """Layout, scan count, image sizes, depth range and unreadable or unpaired files, per class."""
    if not path.exists():
        raise fail(f"{path}: no such file or folder")
    summaries = []
    try:
        with progress_bar("reading", None) as advance:
            for summary in summarise(path):
                if not summaries or summaries[-1] is not summary:
                    summaries.append(summary)
                advance(status=summary.name)
    except ScanError as e:
        raise fail(str(e)) from None
    table = Table(title=f"{path}")
    for column in ("class", "layout", "scans", "size", "depth range", "labels", "problems"):
        table.add_column(column, justify="right" if column in ("scans", "problems") else "left")
    for s in summaries:
        labels = ", ".join(f"{k} {v}" for k, v in sorted(s.labels.items()))
        sizes = ", ".join(f"{k} ({v})" if len(s.sizes) > 1 else k for k, v in s.sizes.items())
        table.add_row(
            s.name,
            ", ".join(sorted(s.layouts)) or "-",
            str(s.scans),
            sizes or "-",
            s.depth_range,
            labels or "-",
            str(len(s.problems)),
        )
    console.print(table)
    problems = [p for s in summaries for p in s.problems]
    for line in problems if all_problems else problems[:10]:
        warn(line)
    if len(problems) > 10 and not all_problems:
        console.print(f"... and {len(problems) - 10} more (use --all)")
    if not any(s.scans for s in summaries):
        raise typer.Exit(2)
