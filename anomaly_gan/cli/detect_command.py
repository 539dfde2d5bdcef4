"""`anomaly-gan detect`."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from anomaly_gan.bundle.meta import DEFAULT_MODE, MODES, BundleError, read_meta
from anomaly_gan.cli.app import (
    command,
    console,
    errors,
    fail,
    load_detectors,
    output_dir,
    progress_bar,
    run_folder,
    warn,
)
from anomaly_gan.data.layouts import ScanRef, find_scans
from anomaly_gan.data.scan import ScanError
from anomaly_gan.report.records import Results, write_results

if TYPE_CHECKING:  # torch and the networks load only after paths and bundles were checked
    from anomaly_gan.detect.detector import Detector

MODELS = Path("models")


def bundle_paths(model: Path | None, models: Path | None) -> list[Path]:
    """--model, else every bundle under --models (default models/)."""
    if model is not None:
        return [model]
    root = models or MODELS
    found = sorted(p.parent for p in root.glob("*/model.json")) if root.is_dir() else []
    if not found:
        raise fail(f"no trained model bundle in {root}/; train one first, e.g. "
                   "`anomaly-gan train --shape sphere --wgan`, or pass --model")
    return found


def folder_labelled(path: Path, refs: list[ScanRef]) -> list[ScanRef]:
    """Scans of a folder without test/<defect>/ subfolders are labelled with the folder's name (for
    example the class of a class folder), so the report does not call them 'good' unchecked."""
    if path.is_dir() and all(r.label == "good" for r in refs):
        return [replace(r, label=path.resolve().name) for r in refs]
    return refs


def summary_table(results: Results, folder: Path, detectors: list[Detector], out: Console) -> None:
    for d in detectors:
        out.print(f"model [bold]{d.label}[/] threshold {d.threshold:.3f}: {d.threshold_origin}")
    table = Table(title=f"{len(results.records)} scans, {results.anomalous} anomalous, "
                        f"{len(results.unreadable)} unreadable - most anomalous first")
    table.add_column("scan", overflow="fold")
    for column in ("class", "score", "threshold", "verdict"):
        table.add_column(column, justify="right" if column in ("score", "threshold") else "left")
    for r in sorted(results.records, key=lambda r: r.score, reverse=True)[:10]:
        verdict = "[red]ANOMALOUS[/]" if r.anomalous else "[green]good[/]"
        table.add_row(r.scan, r.class_, f"{r.score:.3f}", f"{r.threshold:.3f}", verdict)
    out.print(table)
    out.print(f"results: {folder / 'results.csv'}, {folder / 'results.json'}; panels in {folder / 'maps'}")


@command()
def detect(
    paths: Annotated[list[Path], typer.Argument(help="Folders (any layout) or single scan files.")],
    model: Annotated[Path | None, typer.Option(help="A bundle folder (one that train wrote under models/).")] = None,
    models: Annotated[Path | None, typer.Option(help="Score against every bundle in this folder "
                                                   "and report the best-matching class.")] = None,
    mode: Annotated[str | None, typer.Option(help=f"{' | '.join(MODES)}: fast = encoder only, refine = "
                                                  "encoder + latent search, seed = the publication's search. "
                                                  f"Default: the bundle's ({DEFAULT_MODE}).")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: a new folder under "
                                                  "reports/detect, named by the time).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Also print the records as JSON on stdout.")] = False,
    save_maps: Annotated[bool, typer.Option(help="Save float anomaly maps as .npy.")] = False,
    threshold: Annotated[float | None, typer.Option(help="Raw score threshold.")] = None,
    far: Annotated[float | None, typer.Option(min=0.0, max=0.5, help="Re-derive the threshold for "
                                                 "this false-alarm rate on the bundle's good scans.")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    fail_on_anomaly: Annotated[bool, typer.Option("--fail-on-anomaly", help="Exit 1 when any scan is "
                                                                      "anomalous.")] = False,
    force: Annotated[bool, typer.Option(help="Write into an existing non-empty --out.")] = False,
) -> None:
    """Score scans against trained bundles, flag anomalies, draw where they are, write a report."""
    if threshold is not None and far is not None:
        raise fail("give --threshold or --far, not both")
    refs, problems = [], []
    for path in paths:
        try:
            found = find_scans(path)
        except ScanError as e:
            problems.append(str(e))
            continue
        refs += folder_labelled(path, found.refs)
        problems += found.skipped
    if not refs:
        for line in problems[:-1]:
            warn(line)
        raise fail(problems[-1] if problems else "no scans given")
    try:
        bundles = bundle_paths(model, models)
        if model is not None:
            read_meta(model)  # a wrong --model is said before torch loads
        from anomaly_gan.detect.detector import DetectOptions
        from anomaly_gan.device import resolve_device

        torch_device = resolve_device(device)
        detectors = load_detectors(bundles, DetectOptions(mode, batch_size, threshold, far), torch_device,
                                   skip_broken=model is None)
    except (BundleError, ValueError) as e:
        raise fail(str(e)) from None
    from anomaly_gan.detect.pipeline import detect as run_detect
    from anomaly_gan.detect.pipeline import models_used
    from anomaly_gan.report.html import render_report

    folder = output_dir(out or run_folder(Path("reports/detect")), force)
    results = Results(models_used(detectors), detectors[0].mode, unreadable=problems)
    report_console = errors if json_out else console
    try:
        with progress_bar(f"detect ({results.mode})", len(refs)) as advance:
            run_detect(refs, detectors, folder, save_maps, results, advance)
    except KeyboardInterrupt:
        results.partial = True
        write_results(folder, results)
        render_report(folder)
        kept = (f"the {len(results.records)} scans scored before it are in {folder}" if results.records
                else f"no batch had finished, so no scan was scored; {folder} holds an empty result")
        report_console.print(f"[yellow]interrupted:[/] {kept} (results and report marked partial)")
        raise typer.Exit(130) from None
    for line in results.unreadable:
        warn(line)
    for line in results.notes:
        errors.print(f"note: {line}", highlight=False, soft_wrap=True)
    summary_table(results, folder, detectors, report_console)
    report_console.print(f"report: {render_report(folder)}")
    if json_out:
        sys.stdout.write(json.dumps([r.to_dict() for r in results.records], indent=2) + "\n")
    if results.unreadable:
        raise typer.Exit(2)
    if fail_on_anomaly and results.anomalous:
        raise typer.Exit(1)
