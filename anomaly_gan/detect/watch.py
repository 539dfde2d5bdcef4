"""`anomaly-gan watch`: score scans as a camera writes them into a folder, in a process that stays up
(what has arrived: `detect.arrivals`).

`Station` scores what arrived against the loaded bundles and appends the records to one results
folder per day (`OUT/YYYY-MM-DD/`, the files `detect` writes). What it scored or reported is read
back from those folders on start, so a restart (after a kill -9 too) scores every scan once:
records are appended and flushed after each batch, and a scan whose record was not written is
scored again. No torch here: the detectors may be the onnx runtime's.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from anomaly_gan.bundle.meta import BundleError
from anomaly_gan.data.layouts import ScanRef, iter_scans
from anomaly_gan.data.scan import Scan, ScanError
from anomaly_gan.detect.judge import Judge
from anomaly_gan.detect.pipeline import Names, PanelChoice, models_used, scorable, score_scans, write_batch
from anomaly_gan.report.html import render_report
from anomaly_gan.report.records import Output, Record, Results, ResultsError, ResultsWriter, read_records, read_results


def read_ahead(refs: list[ScanRef], size: int) -> Iterator[tuple[list[Scan], list[str]]]:
    """The scans in batches of `size`, decoded, with a line per unreadable file; the next batch is
    decoded in a thread while the caller scores this one."""
    batches = [refs[i : i + size] for i in range(0, len(refs), size)]
    with ThreadPoolExecutor(1, thread_name_prefix="watch-reader") as pool:
        future = pool.submit(_decode, batches[0]) if batches else None
        for k in range(len(batches)):
            decoded = future.result()
            if k + 1 < len(batches):
                future = pool.submit(_decode, batches[k + 1])
            yield decoded


def _decode(refs: list[ScanRef]) -> tuple[list[Scan], list[str]]:
    scans, lines = [], []
    for _, scan in iter_scans(refs):
        (lines.append(str(scan)) if isinstance(scan, ScanError) else scans.append(scan))
    return scans, lines


def handled_before(out: Path) -> set[str]:
    """Every scan a watch writing into `out` scored or reported (from its day folders)."""
    handled: set[str] = set()
    for folder in sorted(p for p in out.glob("????-??-??") if p.is_dir()):
        try:
            handled.update(r.scan for r in read_records(folder))
            handled.update(line.split(": ", 1)[0] for line in read_results(folder).unreadable)
        except ResultsError:
            continue  # a day folder without run.json yet: its records are read above
    return handled


class Station:
    """Scores arrived scans against the detectors and appends their records to the day's folder
    under `out`; a new folder at midnight, and the report rendered when a day's folder closes."""

    def __init__(
        self,
        detectors: list[Judge],
        out: Path,
        output: Output,
        today: Callable[[], datetime.date] = datetime.date.today,
    ) -> None:
        self.detectors, self.out, self.output, self.today = detectors, out, output, today
        self.choice = PanelChoice(output)
        self.sizes: set[tuple[int, int]] = set()
        self.day: str | None = None
        self.writer: ResultsWriter | None = None
        self.names = Names()
        self.folder = out

    def _open_day(self) -> ResultsWriter:
        day = self.today().isoformat()
        if self.writer is not None and day == self.day:
            return self.writer
        self.close()
        self.day, self.folder = day, self.out / day
        self.folder.mkdir(parents=True, exist_ok=True)
        models = models_used(self.detectors)
        self.names = Names()
        if (self.folder / "run.json").exists():  # a restart the same day: append to it
            results = read_results(self.folder)
            for r in read_records(self.folder):
                self.names(r.label, r.id)
            known = {m.bundle_id for m in results.models}
            results.models += [m for m in models if m.bundle_id not in known]
            results.partial = True
        else:
            results = Results(models, self.detectors[0].mode)
        self.writer = ResultsWriter(self.folder, results)
        return self.writer

    def score(self, scans: list[Scan], problems: list[str]) -> tuple[list[Record], list[str]]:
        """Score and write these scans; the records, and one line per file that could not be scored
        (`problems`: unreadable ones, halves without partner; and those no bundle can score), each
        also kept in the day's run.json."""
        writer = self._open_day()
        lines = list(problems)
        refused: list[str] = []
        scans = scorable(scans, self.detectors, refused)
        lines += refused
        writer.results.unreadable += lines
        records: list[Record] = []
        if scans:
            scored, plans = score_scans(scans, self.detectors, self.names, self.choice, writer.results, self.sizes)
            records = write_batch(writer, scans, self.detectors, scored, plans, self.folder, self.output)
        elif lines:
            writer.save()
        return records, lines

    def reset(self) -> None:
        """Drop the open day's files after a failed write (a full disk): the next batch reopens
        them, and a record cut half-way is dropped then, as after a kill."""
        if self.writer is not None:
            self.writer.abandon()
        self.writer = None

    def replace_detectors(self, detectors: list[Judge]) -> None:
        """Score with reloaded bundles from now on; the day's run.json lists every bundle used."""
        self.detectors = detectors
        if self.writer is not None:
            known = {m.bundle_id for m in self.writer.results.models}
            self.writer.results.models += [m for m in models_used(detectors) if m.bundle_id not in known]
            self.writer.save()

    def close(self) -> None:
        """Finish the open day's folder and render its report."""
        if self.writer is None:
            return
        self.writer.close(finished=True)
        self.writer = None
        render_report(self.folder, self.output.top)


def bundle_stamps(detectors: list[Judge]) -> dict[Path, str]:
    """What a bundle replaced while watching changes: each model.json's size and time."""
    stamps = {}
    for d in detectors:
        path = d.path / "model.json"
        try:
            stat = path.stat()
            stamps[d.path] = f"{stat.st_size}:{stat.st_mtime_ns}"
        except OSError as e:
            stamps[d.path] = f"unreadable: {e.strerror}"
    return stamps


def reload_if_replaced(
    detectors: list[Judge], stamps: dict[Path, str], load: Callable[[list[Path]], list[Judge]]
) -> tuple[list[Judge] | None, dict[Path, str], str | None]:
    """New detectors when a bundle's model.json changed since `stamps` and the bundle loads again;
    otherwise None. The line says what happened (None when nothing changed)."""
    now = bundle_stamps(detectors)
    if now == stamps:
        return None, stamps, None
    changed = ", ".join(str(p) for p in now if now[p] != stamps.get(p))
    try:
        fresh = load([d.path for d in detectors])
    except (BundleError, ValueError, OSError) as e:
        return None, now, f"{changed} changed but cannot be loaded ({e}); still scoring with the bundle loaded before"
    return fresh, bundle_stamps(fresh), f"{changed} changed: reloaded"
