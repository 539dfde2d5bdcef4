"""`anomaly-gan watch` (score scans as a station writes them, with a live page) and `anomaly-gan
export --onnx` (the torch-free scorer a station can run)."""

from __future__ import annotations

import datetime
import json
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

import typer

from anomaly_gan.bundle.meta import BundleError, read_meta
from anomaly_gan.cli.app import RUNTIMES, command, console, fail, finite, load_detectors, warn
from anomaly_gan.cli.detect_command import bundle_paths
from anomaly_gan.fsutil import describe_os_error
from anomaly_gan.report.records import PANELS, Output, Record, ResultsError

HOOK_TIMEOUT_S = 10.0
SUMMARY_EVERY_S = 60.0


@command(name="export")
def export(
    model: Annotated[Path, typer.Option("--onnx", help="The bundle whose fast-mode scorer to export as ONNX.")],
) -> None:
    """Export a bundle's fast-mode scoring (encoder, generator, critic, head and score components) as
    scorer.onnx beside its model.json, for `detect --runtime onnx` and `watch --runtime onnx`: they
    score with onnxruntime and numpy alone, without torch. Export again after retraining."""
    try:
        read_meta(model)
        from anomaly_gan.detect.onnx_export import export_onnx

        console.print("exporting (torch.export, then ONNX; about 15 s)")
        path = export_onnx(model)
    except (BundleError, ValueError) as e:
        raise fail(str(e)) from None
    console.print(f"written: {path} ({path.stat().st_size / 1e6:.1f} MB); use it with --runtime onnx")


def _address(serve: str) -> tuple[str, int]:
    host, _, port = serve.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise fail(f"--serve {serve}: give [HOST:]PORT, a port from 1 to 65535")
    return host.strip("[]") or "127.0.0.1", int(port)


class _Hook:
    """--on-anomaly: the command gets each anomalous record as JSON on stdin, one at a time beside
    the scoring, each limited to HOOK_TIMEOUT_S; a failure is said in one line and the watch goes on."""

    def __init__(self, cmd: str | None) -> None:
        self.cmd = cmd
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="on-anomaly") if cmd else None

    def __call__(self, record: Record) -> None:
        if self.pool is not None:
            self.pool.submit(self._run, record)

    def _run(self, record: Record) -> None:
        try:
            done = subprocess.run(
                self.cmd,
                shell=True,
                input=json.dumps(record.to_dict()),
                text=True,
                capture_output=True,
                timeout=HOOK_TIMEOUT_S,
            )
            if done.returncode:
                said = (done.stderr.strip().splitlines() or [""])[-1]
                warn(f"--on-anomaly exited {done.returncode} for {record.scan}{': ' + said if said else ''}")
        except subprocess.TimeoutExpired:
            warn(f"--on-anomaly took over {HOOK_TIMEOUT_S:g} s for {record.scan}; stopped")
        except OSError as e:
            warn(f"--on-anomaly could not run for {record.scan}: {e.strerror or e}")

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)


RETRY_S = 10.0


def _score_until_written(station, scans, problems: list[str], stop: threading.Event):
    """Station.score, tried again every RETRY_S while the results cannot be written (a full or
    read-only disk): the scans wait, nothing is lost; a stop gives up (a restart scores them)."""
    while True:
        try:
            return station.score(scans, problems)
        except OSError as e:
            station.reset()
            warn(f"{describe_os_error(e)}; {len(scans)} scans wait and are tried again in {RETRY_S:g} s")
            if stop.wait(RETRY_S):
                return [], []


class _Stop:
    """Ctrl-C and SIGTERM set an event the loop checks between batches: the batch in hand is
    written whole, then the day's report, then exit 0."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.why = ""

    def __enter__(self) -> _Stop:
        def stop(signum: int, frame) -> None:
            self.why = signal.Signals(signum).name
            self.event.set()

        self.previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)


@command()
def watch(
    folder: Annotated[Path, typer.Argument(help="The folder a station writes scans into (any layout detect reads).")],
    model: Annotated[Path | None, typer.Option(help="A bundle folder.")] = None,
    models: Annotated[
        Path | None, typer.Option(help="Every bundle in this folder; the best-matching class per scan.")
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Results, one folder per day (OUT/YYYY-MM-DD); a restart continues them.")
    ] = Path("reports/watch"),
    mode: Annotated[str, typer.Option(help="fast (the line's default), refine or seed.")] = "fast",
    runtime: Annotated[
        str, typer.Option(help="torch, or onnx (scorer.onnx from `export --onnx`; no torch).")
    ] = "torch",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda (runtime torch).")] = "auto",
    far: Annotated[
        float | None, typer.Option(min=0.0001, max=0.5, callback=finite, help="False-alarm rate for the threshold.")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(callback=finite, help="Score threshold instead of the calibrated one.")
    ] = None,
    serve: Annotated[
        str | None, typer.Option(help="[HOST:]PORT: serve the live page there (host 127.0.0.1 unless given).")
    ] = None,
    on_anomaly: Annotated[
        str | None,
        typer.Option(
            help=f"Shell command run per anomalous scan with its record as JSON on stdin ({HOOK_TIMEOUT_S:g} s limit)."
        ),
    ] = None,
    panels: Annotated[
        str, typer.Option(help="Panels for: top (flagged scans and the --report-top most anomalous), all, or none.")
    ] = "top",
    report_top: Annotated[
        int, typer.Option(min=0, help="Also draw panels for this many most anomalous scans (0: flagged only, fastest).")
    ] = 0,
    settle: Annotated[
        float, typer.Option(min=0.05, help="Seconds a file must stay unchanged when no file event announced it.")
    ] = 1.0,
    partner_timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds a colour or depth image waits for its partner.")
    ] = 30.0,
) -> None:
    """Score scans as they arrive in FOLDER, until Ctrl-C or SIGTERM.

    A file counts once written (closed or moved in; else unchanged for --settle s); colour and depth
    wait for each other. Records go to OUT/<day>/ (results.jsonl, results.csv, run.json, maps/,
    report.html at the day's end or the stop); a restart scores what arrived meanwhile and nothing twice.
    """
    from anomaly_gan.detect.arrivals import WatchSettings
    from anomaly_gan.detect.judge import DetectOptions

    if not folder.is_dir():
        raise fail(f"{folder}: no such folder to watch")
    if panels not in PANELS:
        raise fail(f"--panels {panels}: choose one of {', '.join(PANELS)}")
    if runtime not in RUNTIMES:
        raise fail(f"--runtime {runtime}: choose one of {', '.join(RUNTIMES)}")
    out_abs, folder_abs = out.resolve(), folder.resolve()
    if out_abs == folder_abs or folder_abs in out_abs.parents or out_abs in folder_abs.parents:
        raise fail(f"--out {out}: must lie outside the watched folder {folder} (and not hold it)")
    address = _address(serve) if serve else None
    bundles = bundle_paths(model, models)
    if threshold is not None and far is not None:
        raise fail("give --threshold or --far, not both")
    options = DetectOptions(mode, threshold=threshold, far=far)

    def load(paths: list[Path]):
        where = None
        if runtime == "torch":
            from anomaly_gan.device import resolve_device

            where = resolve_device(device)
        return load_detectors(paths, options, where, skip_broken=model is None, runtime=runtime)

    try:
        detectors = load(bundles)
    except (BundleError, ValueError) as e:
        raise fail(str(e)) from None
    out.mkdir(parents=True, exist_ok=True)
    _run(
        folder,
        detectors,
        load,
        out,
        WatchSettings(settle, partner_timeout),
        Output(panels=panels, top=report_top),
        address,
        on_anomaly,
    )


def _run(folder, detectors, load, out: Path, settings, output: Output, address, on_anomaly: str | None) -> None:
    """The watch loop: wait for scans, score and write them, feed the page and the hook."""
    from anomaly_gan.detect.arrivals import Arrivals, wait_for_work
    from anomaly_gan.detect.pipeline import models_used
    from anomaly_gan.detect.watch import (
        Station,
        bundle_stamps,
        handled_before,
        read_ahead,
        reload_if_replaced,
    )
    from anomaly_gan.report.live import LiveState, PortInUse, serve

    try:
        handled = handled_before(out)
    except ResultsError as e:
        raise fail(str(e)) from None
    arrivals = Arrivals(folder, settings, handled)
    how = arrivals.start()
    station = Station(detectors, out, output)
    state = LiveState(out, f"{folder} ({how})", models_used(detectors))
    if address:
        try:
            serve(state, *address)
        except PortInUse as e:
            arrivals.stop()
            raise fail(str(e)) from None
        console.print(f"live page: http://{address[0]}:{address[1]}/")
    console.print(
        f"watching {folder} ({how}); {len(handled)} scans already handled in {out}; "
        f"{', '.join(f'{d.label} threshold {d.threshold:.3f}' for d in detectors)}; Ctrl-C stops"
    )
    hook, stamps = _Hook(on_anomaly), bundle_stamps(detectors)
    scored = anomalous = 0
    last_summary = time.monotonic()
    with _Stop() as stop:
        try:
            while not stop.event.is_set():
                refs, problems = wait_for_work(arrivals, stop.event)
                fresh, stamps, said = reload_if_replaced(station.detectors, stamps, load)
                if said:
                    (console.print if fresh else warn)(said)
                if fresh:
                    station.replace_detectors(fresh)
                    state.models = models_used(fresh)
                if not refs and not problems:
                    continue
                for k, (scans, unread) in enumerate(read_ahead(refs, settings.batch) if refs else [([], [])]):
                    said = unread + (problems if k == 0 else [])
                    records, lines = _score_until_written(station, scans, said, stop.event)
                    for line in lines:
                        warn(line)
                    state.add(station.day or "", records, lines, datetime.datetime.now())
                    for r in records:
                        if r.anomalous:
                            console.print(
                                f"[red]ANOMALOUS[/] {r.scan}: {r.verdict} (score {r.score:.3f} >= {r.threshold:.3f})",
                                highlight=False,
                            )
                            hook(r)
                    scored, anomalous = scored + len(records), anomalous + sum(r.anomalous for r in records)
                if time.monotonic() - last_summary >= SUMMARY_EVERY_S:
                    console.print(
                        f"{datetime.datetime.now():%H:%M:%S} {scored} scans scored, {anomalous} anomalous since start"
                    )
                    last_summary = time.monotonic()
        finally:
            arrivals.stop()
            hook.close()
            station.close()
    console.print(
        f"stopped ({stop.why}): {scored} scans scored, {anomalous} anomalous this session; results in {station.folder}"
    )
