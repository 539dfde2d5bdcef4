"""`anomaly-gan evaluate`, `report` and `view`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from anomaly_gan.bundle.meta import DEFAULT_MODE, MODES, BundleError, read_meta
from anomaly_gan.bundle.provenance import training_overlap, unseen_refs
from anomaly_gan.cli.app import (
    caution,
    command,
    console,
    fail,
    finite,
    load_detectors,
    output_dir,
    progress_bar,
    run_folder,
    warn,
)
from anomaly_gan.data.labelled import NORMAL, labelled_refs
from anomaly_gan.data.scan import ScanError
from anomaly_gan.deps import open3d
from anomaly_gan.report.records import REPORT_TOP, Output, ResultsError

if TYPE_CHECKING:  # torch and the networks load only after paths and the bundle were checked
    from anomaly_gan.detect.detector import Detector

CLOUD_SUFFIXES = (".ply", ".pcd")
MODE_HELP = f"{' | '.join(MODES)}; default: the bundle's ({DEFAULT_MODE})."


def _detector(model: Path, mode: str | None, device: str, far: float | None = None) -> Detector:
    try:
        from anomaly_gan.detect.judge import DetectOptions
        from anomaly_gan.device import resolve_device

        return load_detectors([model], DetectOptions(mode, far=far), resolve_device(device), skip_broken=False)[0]
    except (BundleError, ValueError) as e:
        raise fail(str(e)) from None


@command()
def evaluate(
    model: Annotated[Path, typer.Option(help="The bundle to evaluate.")],
    root: Annotated[
        Path | None,
        typer.Argument(help="MVTec-style root (test/good, test/<defect>, gt/) or, with --normal-class, a class root."),
    ] = None,
    normal: Annotated[Path | None, typer.Option(help="Folder of normal scans.")] = None,
    anomalous: Annotated[list[Path] | None, typer.Option(help="Folder(s) of anomalous scans.")] = None,
    normal_class: Annotated[
        str | None, typer.Option(help="With a class root: this class is normal, all others anomalous.")
    ] = None,
    mode: Annotated[str | None, typer.Option(help=MODE_HELP)] = None,
    far: Annotated[
        float | None,
        typer.Option(
            min=0.0001, max=0.5, callback=finite, help="Threshold for this false-alarm rate instead of the bundle's."
        ),
    ] = None,
    unseen: Annotated[
        bool,
        typer.Option(
            help="Leave out the normal scans the bundle trained or calibrated on (by scan id: for the data it was "
            "made from), so the figures are on scans it never saw."
        ),
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: a new folder under reports/eval, named by the time).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    force: Annotated[bool, typer.Option(help="Write into an existing non-empty --out.")] = False,
) -> None:
    """Measure a bundle on labelled scans: ROC/AUROC, PR/AP, F1, thresholds, pixel AUROC, AU-PRO."""
    try:
        found = labelled_refs(root, normal, anomalous or [], normal_class)
        refs, left_out = unseen_refs(found.refs, read_meta(model)) if unseen else (found.refs, 0)
        if unseen and not any(r.label == NORMAL for r in refs):
            raise ScanError(f"--unseen left no normal scan: model {model} trained or calibrated on all of them")
        overlap = training_overlap(refs, read_meta(model))
    except (ScanError, BundleError) as e:
        raise fail(str(e)) from None
    detector = _detector(model, mode, device, far)
    from anomaly_gan.detect.evaluate import evaluate as run_evaluate
    from anomaly_gan.report.html import render_report

    if left_out:
        console.print(f"left out {left_out} normal scans the bundle trained or calibrated on (--unseen)")
    if overlap:
        caution(
            f"{overlap} of the normal scans are this bundle's own training scans; its figures on them are "
            "optimistic (evaluate on held-out scans)"
        )
    inputs = [model, *([root] if root else []), *([normal] if normal else []), *(anomalous or [])]
    folder = output_dir(out or run_folder(Path("reports/eval")), force, inputs)
    with progress_bar(f"evaluate ({detector.mode})", len(refs)) as advance:
        metrics, results = run_evaluate(refs, detector, folder, Output(), advance)
    for line in found.skipped + results.unreadable:
        warn(line)
    report = render_report(folder)
    table = Table(title=f"{detector.label} on {metrics['normal']} normal + {metrics['anomalous']} anomalous scans")
    table.add_column("metric")
    table.add_column("value", justify="right")
    at = metrics["at_threshold"]
    for name, value in (
        ("AUROC", metrics["auroc"]),
        ("average precision", metrics["average_precision"]),
        ("F1 max", metrics["f1_max"]),
        ("pixel AUROC", metrics["pixel_auroc"]),
        ("AU-PRO (FPR 0.3)", metrics["au_pro_0.3"]),
        ("object-pixel AUROC", metrics["object_pixel_auroc"]),
        ("object AU-PRO (FPR 0.3)", metrics["object_au_pro_0.3"]),
        ("accuracy at threshold", at["accuracy"]),
        ("TPR at threshold", at["tpr"]),
        ("TNR at threshold", at["tnr"]),
        ("false alarms at threshold", at["far"]),
        ("false alarms promised (at most)", metrics["promised_far"]),
        *(
            (f"{name} finding: {what}", value)
            for name, finding in metrics["findings"].items()
            for what, value in (("AUROC", finding["auroc"]), ("TPR", finding["tpr"]), ("false alarms", finding["fpr"]))
        ),
        *((f"AUROC {k}", v) for k, v in metrics["auroc_by_label"].items()),
    ):
        table.add_row(name, "n/a" if value is None else f"{value:.3f}")
    console.print(table)
    console.print(f"threshold {detector.threshold:.3f}: {detector.threshold_origin}")
    console.print(f"metrics: {folder / 'metrics.json'}; report: {report}")
    if found.skipped or results.unreadable:
        raise typer.Exit(2)


@command()
def report(
    results: Annotated[Path, typer.Argument(help="A detect, evaluate or merge output folder.")],
    report_top: Annotated[int, typer.Option(min=0, help="Scans shown with pictures.")] = REPORT_TOP,
) -> None:
    """Re-render report.html from a results folder's run.json, results.jsonl (and metrics.json)."""
    from anomaly_gan.report.html import render_report

    try:
        console.print(f"report: {render_report(results, report_top)}")
    except ResultsError as e:
        raise fail(str(e)) from None


@command()
def view(
    scan: Annotated[Path, typer.Argument(help="One scan: its colour file, .npz/.npy or .ply/.pcd.")],
    out: Annotated[Path, typer.Option(help="Point cloud to write (.ply or .pcd).")],
    model: Annotated[Path | None, typer.Option(help="Paint the anomaly map of this bundle.")] = None,
    mode: Annotated[str | None, typer.Option(help=MODE_HELP)] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    force: Annotated[bool, typer.Option(help="Overwrite OUT.")] = False,
) -> None:
    """Write a coloured 3-D point cloud of a scan, coloured by its anomaly map with --model."""
    if out.suffix.lower() not in CLOUD_SUFFIXES:
        raise fail(
            f"{out}: point clouds are written as {' or '.join(CLOUD_SUFFIXES)}, "
            f"not {out.suffix or 'a file without extension'}"
        )
    if out.exists() and not force:
        raise fail(f"{out}: already exists (use --force)")
    open3d()  # a missing libusb is one line, before any work
    from anomaly_gan.data.layouts import find_scans, load_scan
    from anomaly_gan.report.view import scan_cloud, write_cloud

    try:
        refs = find_scans(scan).refs
        if len(refs) != 1:
            raise ScanError(f"{scan}: holds {len(refs)} scans; give one scan file")
        loaded = load_scan(refs[0])
    except ScanError as e:
        raise fail(str(e)) from None
    if model is None:
        cloud = scan_cloud(loaded)
    else:
        detector = _detector(model, mode, device)
        why = detector.refuses(loaded)
        if why:
            raise fail(f"{loaded.source}: {why}")
        scored = detector.score([loaded])
        cloud = scan_cloud(loaded, scored.scan_maps(0, loaded.shape)[0], detector.map_scales[0])
        verdict = "ANOMALOUS" if scored.anomalous[0] else "good"
        console.print(f"score {scored.scores[0]:.3f} (threshold {detector.threshold:.3f}): {verdict}")
    write_cloud(cloud, out)
    console.print(f"wrote {len(cloud.points)} points to {out}")
