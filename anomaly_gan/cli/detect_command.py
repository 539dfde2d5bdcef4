"""`anomaly-gan detect`."""

from __future__ import annotations

import hashlib
import os
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
    finite,
    load_detectors,
    output_dir,
    progress_bar,
    run_folder,
    warn,
)
from anomaly_gan.data.channels import lacking
from anomaly_gan.data.layouts import ScanRef, find_scans
from anomaly_gan.data.scan import ScanError
from anomaly_gan.distributed import World
from anomaly_gan.report.records import (
    PANELS,
    RECORDS,
    REPORT_TOP,
    RUN,
    TABLE,
    Output,
    Results,
    ResultsError,
    Shard,
    read_records,
    read_results,
    records_as_json,
    top_records,
)

if TYPE_CHECKING:  # torch and the networks load only after paths and bundles were checked
    from anomaly_gan.detect.pipeline import Names

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


def summary_table(results: Results, folder: Path, out: Console) -> None:
    for m in results.models:
        out.print(f"model [bold]{m.class_} ({m.objective})[/] threshold {m.threshold:.3f}: {m.threshold_origin}")
    table = Table(title=f"{results.scans} scans, {results.anomalous} anomalous, "
                        f"{len(results.unreadable)} unreadable - most anomalous first")
    table.add_column("scan", overflow="fold")
    for column in ("class", "score", "threshold", "verdict"):
        table.add_column(column, justify="right" if column in ("score", "threshold") else "left")
    for r in top_records(folder, 10):
        verdict = "[red]ANOMALOUS[/]" if r.anomalous else "[green]good[/]"
        table.add_row(r.scan, r.class_, f"{r.score:.3f}", f"{r.threshold:.3f}", verdict)
    out.print(table)
    out.print(f"results: {folder / RECORDS}, {folder / TABLE}, {folder / RUN}; panels in {folder / 'maps'}")


def parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise fail(f"--shard {text}: expected I/N, for example 0/4") from None
    if not 0 <= index < count:
        raise fail(f"--shard {text}: I must be 0 to N-1")
    return index, count


def take_shard(refs: list[ScanRef], keys: list[str], index: int, count: int) -> tuple[list[ScanRef], Shard]:
    """Every count-th scan from `index` in discovery order (sorted paths), the same slice on any
    machine; `keys` (paths relative to the inputs given) fingerprint what was split."""
    digest = hashlib.sha256("\n".join(keys).encode("utf-8")).hexdigest()[:16]
    return refs[index::count], Shard(index, count, len(refs), digest)


def resumed(folder: Path, results: Results) -> tuple[set[str], Results, Names]:
    """What an interrupted run in `folder` already scored, its header and its file names; refused
    when it used other bundles, thresholds, mode or slice."""
    try:
        before = read_results(folder)
    except ResultsError as e:
        raise fail(f"--resume: {e}") from None
    if not before.partial:
        raise fail(f"{folder}: that run finished; nothing to resume")
    same = ([(m.bundle_id, m.threshold) for m in before.models] == [(m.bundle_id, m.threshold) for m in results.models]
            and before.mode == results.mode and before.shard == results.shard)
    if not same:
        raise fail(f"{folder}: that run used other bundles, thresholds, mode or shard; resume it with the same "
                   "options, or use a new --out")
    from anomaly_gan.detect.pipeline import Names

    done, names = set(), Names()
    for r in read_records(folder):
        done.add(r.scan)
        names(r.label, r.id)  # the same names, in the same order, as the interrupted run gave
    before.unreadable = list(dict.fromkeys(before.unreadable + results.unreadable))
    return done, before, names


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
    panels: Annotated[str, typer.Option(help="Panel pictures for: top = flagged scans and the --report-top "
                                             "most anomalous, all, or none.")] = "top",
    no_panels: Annotated[bool, typer.Option("--no-panels", help="Same as --panels none.")] = False,
    report_top: Annotated[int, typer.Option(min=0, help="Scans shown with pictures in report.html.")] = REPORT_TOP,
    threshold: Annotated[float | None, typer.Option(callback=finite, help="Raw score threshold.")] = None,
    far: Annotated[float | None, typer.Option(min=0.0, max=0.5, callback=finite, help="Re-derive the threshold for "
                                                 "this false-alarm rate on the bundle's good scans.")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    shard: Annotated[str | None, typer.Option(help="I/N: score only slice I of N of the scans found (the "
                                                   "same slice on any machine); join with `merge`.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the interrupted run in --out.")] = False,
    fail_on_anomaly: Annotated[bool, typer.Option("--fail-on-anomaly", help="Exit 1 when any scan is "
                                                                      "anomalous.")] = False,
    force: Annotated[bool, typer.Option(help="Write into an existing non-empty --out.")] = False,
) -> None:
    """Score scans against trained bundles, flag anomalies, draw where they are, write a report.

    Under `torchrun -m anomaly_gan detect ... --out DIR` each process scores a slice; the first merges them.
    """
    if threshold is not None and far is not None:
        raise fail("give --threshold or --far, not both")
    if panels not in PANELS:
        raise fail(f"--panels {panels}: choose one of {', '.join(PANELS)}")
    if resume and (out is None or force):
        raise fail("--resume continues the run in --out: give --out, and not --force")
    world = World.from_env()
    if world.distributed and (shard is not None or out is None or resume):
        raise fail("under torchrun, give --out (the same for every process), and neither --shard nor --resume")
    refs, keys, problems = [], [], []
    for path in paths:
        try:
            found = find_scans(path)
        except ScanError as e:
            problems.append(str(e))
            continue
        base = path if path.is_dir() else path.parent
        refs += folder_labelled(path, found.refs)
        keys += [os.path.relpath(r.source, base) for r in found.refs]
        problems += found.skipped
    if not refs:
        for line in problems[:-1]:
            warn(line)
        raise fail(problems[-1] if problems else "no scans given")
    slice_ = (world.rank, world.size) if world.distributed else parse_shard(shard) if shard else None
    part = None
    if slice_ is not None:
        refs, part = take_shard(refs, keys, *slice_)
        problems = problems if part.index == 0 else []  # said once, by the first slice
    try:
        bundles = bundle_paths(model, models)
        if model is not None:
            read_meta(model)  # a wrong --model is said before torch loads
        from anomaly_gan.detect.detector import DetectOptions
        from anomaly_gan.device import resolve_device

        torch_device = resolve_device(device, world.local_rank)
        detectors = load_detectors(bundles, DetectOptions(mode, batch_size, threshold, far), torch_device,
                                   skip_broken=model is None)
    except (BundleError, ValueError) as e:
        raise fail(str(e)) from None
    meta = detectors[0].bundle.meta
    lacks = [lacking(r.channels, meta.channels, meta.label) for r in refs]
    if all(lacks):  # said once, not once per scan
        raise fail(f"{refs[0].source}: {lacks[0]} (and so has every scan given)")
    from anomaly_gan.detect.pipeline import detect as run_detect
    from anomaly_gan.detect.pipeline import models_used

    root = out or run_folder(Path("reports/detect"))
    results = Results(models_used(detectors), detectors[0].mode, problems, shard=part,
                      found_unreadable=len(problems))
    names = None
    if world.distributed:
        world.start()
        if world.main:
            output_dir(root, force, [*paths, *bundles])
        world.barrier("the output folder was made")
        folder = output_dir(root / "shards" / f"{world.rank}-of-{world.size}", force=False)
    elif resume:
        done, results, names = resumed(root, results)
        refs, folder = [r for r in refs if str(r.source) not in done], root
    else:
        folder = output_dir(root, force, [*paths, *bundles])
    report_console = errors if json_out else console
    output = Output(save_maps, "none" if no_panels else panels, report_top)
    try:
        with progress_bar(f"detect ({results.mode}){f', {part}' if part else ''}", len(refs)) as advance:
            run_detect(refs, detectors, folder, output, results, advance, names=names)
    except KeyboardInterrupt:
        from anomaly_gan.report.html import render_report

        render_report(folder, report_top)
        kept = (f"the {results.scans} scans scored before it are in {folder}" if results.scans
                else f"no batch had finished, so no scan was scored; {folder} holds an empty result")
        report_console.print(f"[yellow]interrupted:[/] {kept} (results and report marked partial; "
                             f"`--out {folder} --resume` continues)")
        raise typer.Exit(130) from None
    if world.distributed:
        world.barrier("every slice was scored")
        if not world.main:
            world.stop()
            return
        folder = root
        shards = [root / "shards" / f"{rank}-of-{world.size}" for rank in range(world.size)]
        from anomaly_gan.report.merge import merge as join

        results = join(root, checked_shards(shards))
        world.stop()
    finish(results, folder, report_top, report_console, json_out)
    if results.unreadable:
        raise typer.Exit(2)
    if fail_on_anomaly and results.anomalous:
        raise typer.Exit(1)


def checked_shards(shards: list[Path]) -> list[tuple[Path, Results]]:
    from anomaly_gan.report.merge import check_shards

    try:
        return check_shards(shards)
    except ResultsError as e:
        raise fail(str(e)) from None


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
    from anomaly_gan.report.merge import merge as join

    runs = checked_shards(shards)  # before OUT is made
    folder = output_dir(out, force, shards)
    results = join(folder, runs)
    finish(results, folder, report_top, console, json_out=False)
    if results.unreadable:
        raise typer.Exit(2)
