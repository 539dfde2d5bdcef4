"""`anomaly-gan detect`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from anomaly_gan.bundle.meta import DEFAULT_MODE, MODES, BundleError, read_meta
from anomaly_gan.cli.app import (
    RUNTIMES,
    command,
    console,
    errors,
    fail,
    finite,
    load_detectors,
    output_dir,
    progress_bar,
    run_folder,
    warn,
)
from anomaly_gan.data.channels import lacking
from anomaly_gan.data.layouts import ScanRef
from anomaly_gan.detect.inputs import InputError, Inputs, find_inputs, parse_shard, take_shard
from anomaly_gan.distributed import World
from anomaly_gan.fsutil import OutputExistsError
from anomaly_gan.report.records import (
    PANELS,
    RECORDS,
    REPORT_TOP,
    RUN,
    TABLE,
    Output,
    Results,
    ResultsError,
    records_as_json,
    top_records,
)

if TYPE_CHECKING:  # torch and the networks load only after paths and bundles were checked
    from anomaly_gan.detect.judge import Judge

MODELS = Path("models")


def bundle_paths(model: Path | None, models: Path | None) -> list[Path]:
    """--model, else every bundle under --models (default models/)."""
    if model is not None:
        return [model]
    root = models or MODELS
    found = sorted(p.parent for p in root.glob("*/model.json")) if root.is_dir() else []
    if not found:
        raise fail(
            f"no trained model bundle in {root}/; train one first, e.g. "
            "`anomaly-gan train --shape sphere --wgan`, or pass --model"
        )
    return found


def summary_table(results: Results, folder: Path, out: Console) -> None:
    for m in results.models:
        out.print(f"model [bold]{m.class_} ({m.objective})[/] threshold {m.threshold:.3f}: {m.threshold_origin}")
    table = Table(
        title=f"{results.scans} scans, {results.anomalous} anomalous, "
        f"{len(results.unreadable)} unreadable - most anomalous first"
    )
    table.add_column("scan", overflow="fold")
    for column in ("class", "score", "threshold", "verdict"):
        table.add_column(column, justify="right" if column in ("score", "threshold") else "left")
    for r in top_records(folder, 10):
        verdict = "[red]ANOMALOUS[/]" if r.anomalous else "[green]good[/]"
        table.add_row(r.scan, r.class_, f"{r.score:.3f}", f"{r.threshold:.3f}", verdict)
    out.print(table)
    out.print(f"results: {folder / RECORDS}, {folder / TABLE}, {folder / RUN}; panels in {folder / 'maps'}")


@command()
def detect(
    paths: Annotated[list[Path], typer.Argument(help="Folders (any layout) or single scan files.")],
    model: Annotated[Path | None, typer.Option(help="A bundle folder (one that train wrote under models/).")] = None,
    models: Annotated[
        Path | None, typer.Option(help="Score against every bundle in this folder and report the best-matching class.")
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            help=f"{' | '.join(MODES)}: fast = encoder only, refine = "
            "encoder + latent search, seed = the publication's search. "
            f"Default: the bundle's ({DEFAULT_MODE})."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: a new folder under reports/detect, named by the time).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Also print the records as JSON on stdout.")] = False,
    save_maps: Annotated[bool, typer.Option(help="Save float anomaly maps as .npy.")] = False,
    panels: Annotated[
        str,
        typer.Option(help="Panel pictures for: top = flagged scans and the --report-top most anomalous, all, or none."),
    ] = "top",
    no_panels: Annotated[bool, typer.Option("--no-panels", help="Same as --panels none.")] = False,
    report_top: Annotated[int, typer.Option(min=0, help="Scans shown with pictures in report.html.")] = REPORT_TOP,
    threshold: Annotated[
        float | None, typer.Option(callback=finite, help="Score threshold, in good-scan spreads on either finding.")
    ] = None,
    far: Annotated[
        float | None,
        typer.Option(
            min=0.0001,
            max=0.5,
            callback=finite,
            help="Re-derive the threshold for this false-alarm rate on the bundle's held-out good scans.",
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    runtime: Annotated[
        str,
        typer.Option(
            help="torch, or onnx: fast mode with the bundle's scorer.onnx (`anomaly-gan export --onnx`), "
            "onnxruntime and numpy only, no torch loaded."
        ),
    ] = "torch",
    shard: Annotated[
        str | None,
        typer.Option(
            help="I/N: score only slice I of N of the scans found (the same slice on any machine); join with `merge`."
        ),
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue the interrupted run in --out.")] = False,
    fail_on_anomaly: Annotated[
        bool, typer.Option("--fail-on-anomaly", help="Exit 1 when any scan is anomalous.")
    ] = False,
    force: Annotated[bool, typer.Option(help="Write into an existing non-empty --out.")] = False,
) -> None:
    """Score scans against trained bundles, flag anomalies, draw where they are, write a report.

    Under `torchrun -m anomaly_gan detect ... --out DIR` each process scores a slice; the first merges them.
    """
    if threshold is not None and far is not None:
        raise fail("give --threshold or --far, not both")
    _check_choices(panels, mode, runtime)
    world = World.from_env()
    _check_destination(out, resume, force, shard, world)
    inputs = _inputs(paths, shard, world)
    bundles = bundle_paths(model, models)
    options = (mode, batch_size, threshold, far)
    detectors = _detectors(bundles, model is not None, options, (device, runtime), world, inputs.refs)
    from anomaly_gan.detect.batch import Destination, Interrupted, run_batch
    from anomaly_gan.detect.pipeline import models_used

    to = Destination(out or run_folder(Path("reports/detect")), force, resume, [*paths, *bundles])
    results = Results(
        models_used(detectors),
        detectors[0].mode,
        inputs.problems,
        shard=inputs.shard,
        found_unreadable=len(inputs.problems),
    )
    report_console = errors if json_out else console
    try:
        with progress_bar(
            f"detect ({results.mode}){f', {inputs.shard}' if inputs.shard else ''}", len(inputs.refs)
        ) as advance:
            done = run_batch(
                inputs.refs,
                detectors,
                to,
                Output(save_maps, "none" if no_panels else panels, report_top),
                results,
                advance,
                world,
            )
    except (OutputExistsError, ResultsError) as e:
        raise fail(str(e)) from None
    except Interrupted as e:
        kept = (
            f"the {e.scored} scans scored before it are in {e.folder}"
            if e.scored
            else f"no batch had finished, so no scan was scored; {e.folder} holds an empty result"
        )
        report_console.print(
            f"[yellow]interrupted:[/] {kept} (results and report marked partial; `--out {e.folder} --resume` continues)"
        )
        raise typer.Exit(130) from None
    if done is not None:  # None: a torchrun process whose slice the first merged
        finish(*done, report_top, report_console, json_out)
        if done[0].unreadable:
            raise typer.Exit(2)
        if fail_on_anomaly and done[0].anomalous:
            raise typer.Exit(1)


def _check_choices(panels: str, mode: str | None, runtime: str) -> None:
    if panels not in PANELS:
        raise fail(f"--panels {panels}: choose one of {', '.join(PANELS)}")
    if mode is not None and mode not in MODES:
        raise fail(f"--mode {mode}: choose one of {', '.join(MODES)}")
    if runtime not in RUNTIMES:
        raise fail(f"--runtime {runtime}: choose one of {', '.join(RUNTIMES)}")
    if runtime == "onnx" and mode not in (None, "fast"):
        raise fail(f"--runtime onnx scores in fast mode only (not --mode {mode})")


def _check_destination(out: Path | None, resume: bool, force: bool, shard: str | None, world: World) -> None:
    if resume and (out is None or force):
        raise fail("--resume continues the run in --out: give --out, and not --force")
    if world.distributed and (shard is not None or out is None or resume):
        raise fail("under torchrun, give --out (the same for every process), and neither --shard nor --resume")


def _inputs(paths: list[Path], shard: str | None, world: World) -> Inputs:
    """The scans given, or this process's slice of them; one line and exit 2 when none can be scored."""
    try:
        inputs = find_inputs(paths)
        slice_ = (world.rank, world.size) if world.distributed else parse_shard(shard) if shard else None
    except InputError as e:
        for line in e.skipped:
            warn(line)
        raise fail(str(e)) from None
    return take_shard(inputs, *slice_) if slice_ else inputs


def _detectors(
    bundles: list[Path], named: bool, options: tuple, device_runtime: tuple[str, str], world: World, refs: list[ScanRef]
) -> list[Judge]:
    """The bundles loaded with DetectOptions(*options) on (device, runtime) (a wrong --model is said
    before torch loads); refused when no scan has the channels they need."""
    device, runtime = device_runtime
    try:
        if named:
            read_meta(bundles[0])
        from anomaly_gan.detect.judge import DetectOptions

        where = None
        if runtime == "torch":
            from anomaly_gan.device import resolve_device

            where = resolve_device(device, world.local_rank)
        detectors = load_detectors(bundles, DetectOptions(*options), where, not named, runtime)
    except (BundleError, ValueError) as e:
        raise fail(str(e)) from None
    meta = detectors[0].meta
    lacks = [lacking(r.channels, meta.channels, meta.label) for r in refs]
    if all(lacks):  # said once, not once per scan
        raise fail(f"{refs[0].source}: {lacks[0]} (and so has every scan given)")
    return detectors


def finish(results: Results, folder: Path, report_top: int, report_console: Console, json_out: bool) -> None:
    """What detect and merge say at the end: skipped files, notes, the top ten, where the report is."""
    from anomaly_gan.report.html import render_report

    for line in results.unreadable:
        warn(line)
    for line in results.notes:
        errors.print(f"note: {line}", highlight=False, soft_wrap=True)
    summary_table(results, folder, report_console)
    report_console.print(f"report: {render_report(folder, report_top)}")
    if json_out:
        records_as_json(folder, sys.stdout)


@command()
def merge(
    out: Annotated[Path, typer.Argument(help="Folder for the joined results (new, or empty).")],
    shards: Annotated[list[Path], typer.Argument(help="The output folders of `detect --shard I/N`, one per I.")],
    report_top: Annotated[int, typer.Option(min=0, help="Scans shown with pictures.")] = REPORT_TOP,
    force: Annotated[bool, typer.Option(help="Write into an existing non-empty OUT.")] = False,
) -> None:
    """Join the outputs of `detect --shard I/N` runs into one results folder and report.

    It checks that they are the N slices of one run: same inputs, bundles and thresholds, none missing or twice.

    Panels stay in the shard folders; the report links them there.
    """
    from anomaly_gan.report.merge import check_shards
    from anomaly_gan.report.merge import merge as join

    try:
        runs = check_shards(shards)  # before OUT is made
    except ResultsError as e:
        raise fail(str(e)) from None
    folder = output_dir(out, force, shards)
    results = join(folder, runs)
    finish(results, folder, report_top, console, json_out=False)
    if results.unreadable:
        raise typer.Exit(2)
