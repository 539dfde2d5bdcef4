"""One detect run over a batch, apart from the command line: where the results go (a new folder, an
interrupted run continued, or one folder per torchrun process that the first merges), and the
scoring between. The command line only checks options, says things and picks exit codes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from anomaly_gan.data.layouts import ScanRef
from anomaly_gan.detect.judge import Judge
from anomaly_gan.detect.pipeline import Names, detect
from anomaly_gan.distributed import World
from anomaly_gan.fsutil import prepare_output_dir
from anomaly_gan.report.html import render_report
from anomaly_gan.report.merge import check_shards, merge
from anomaly_gan.report.records import Output, Results, ResultsError, read_records, read_results


class Interrupted(Exception):
    """Ctrl-C or SIGTERM while scoring: what was scored is kept in `folder`, marked partial, with a report."""

    def __init__(self, folder: Path, scored: int) -> None:
        super().__init__(f"{scored} scans scored in {folder}")
        self.folder, self.scored = folder, scored


@dataclass(frozen=True)
class Destination:
    root: Path  # the --out folder
    force: bool  # an existing non-empty root may be replaced
    resume: bool  # continue the interrupted run in root
    inputs: Sequence[Path]  # what root must never be or hold


def resumed(folder: Path, results: Results) -> tuple[set[str], Results, Names]:
    """What an interrupted run in `folder` already scored, its header and its file names; ResultsError
    when it finished or used other bundles, thresholds, mode or slice."""
    try:
        before = read_results(folder)
    except ResultsError as e:
        raise ResultsError(f"--resume: {e}") from None
    if not before.partial:
        raise ResultsError(f"{folder}: that run finished; nothing to resume")
    same = (
        [(m.bundle_id, m.threshold) for m in before.models] == [(m.bundle_id, m.threshold) for m in results.models]
        and before.mode == results.mode
        and before.shard == results.shard
    )
    if not same:
        raise ResultsError(
            f"{folder}: that run used other bundles, thresholds, mode or shard; resume it with the "
            "same options, or use a new --out"
        )
    done, names = set(), Names()
    for r in read_records(folder):
        done.add(r.scan)
        names(r.label, r.id)  # the same names, in the same order, as the interrupted run gave
    before.unreadable = list(dict.fromkeys(before.unreadable + results.unreadable))
    return done, before, names


def run_batch(
    refs: list[ScanRef],
    detectors: list[Judge],
    to: Destination,
    output: Output,
    results: Results,
    advance: Callable[[int], None],
    world: World,
) -> tuple[Results, Path] | None:
    """Score `refs` into `to` and return the results to report and their folder; None on a torchrun
    process other than the first, whose slice the first merges. Interrupted keeps what was scored."""
    names = None
    if world.distributed:
        world.start()
        if world.main:
            prepare_output_dir(to.root, to.force, to.inputs)
        world.barrier("the output folder was made")
        folder = prepare_output_dir(to.root / "shards" / f"{world.rank}-of-{world.size}", force=False)
    elif to.resume:
        done, results, names = resumed(to.root, results)
        refs, folder = [r for r in refs if str(r.source) not in done], to.root
    else:
        folder = prepare_output_dir(to.root, to.force, to.inputs)
    try:
        detect(refs, detectors, folder, output, results, advance, names=names)
    except KeyboardInterrupt:
        render_report(folder, output.top)
        raise Interrupted(folder, results.scans) from None
    if not world.distributed:
        return results, folder
    world.barrier("every slice was scored")
    if not world.main:
        world.stop()
        return None
    shards = [to.root / "shards" / f"{rank}-of-{world.size}" for rank in range(world.size)]
    results = merge(to.root, check_shards(shards))
    world.stop()
    return results, to.root
