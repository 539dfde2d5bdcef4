"""`merge`: join the results folders of `detect --shard I/N` runs into one, after checking that
they are the N slices of one run: same inputs, same bundles and thresholds, same mode, every slice
once, every slice complete, no scan twice. Panels stay in the shard folders; the merged records
point at them."""

from __future__ import annotations

import os
from pathlib import Path

from anomaly_gan.report.records import Record, Results, ResultsError, ResultsWriter, read_records, read_results

BATCH = 1000  # records appended per write


class MergeError(ResultsError):
    """Shard folders that are not the slices of one run; the message names the folder."""


def check_shards(folders: list[Path]) -> list[tuple[Path, Results]]:
    runs = [(folder, read_results(folder)) for folder in folders]
    for folder, run in runs:
        if run.shard is None:
            raise MergeError(f"{folder}: not a shard (detect ran there without --shard)")
        if run.partial:
            raise MergeError(
                f"{folder}: {run.shard} was interrupted; finish it with "
                f"`anomaly-gan detect ... --shard {run.shard.index}/{run.shard.count} --out {folder} "
                "--resume`"
            )
        read = run.scans + len(run.unreadable) - run.found_unreadable
        if read != run.shard.assigned:
            raise MergeError(f"{folder}: holds {read} of the {run.shard.assigned} scans of its slice")
    first_folder, first = runs[0]
    for folder, run in runs[1:]:
        if [(m.bundle_id, m.threshold) for m in run.models] != [(m.bundle_id, m.threshold) for m in first.models]:
            raise MergeError(f"{folder}: scored with other bundles or thresholds than {first_folder}")
        if run.mode != first.mode:
            raise MergeError(f"{folder}: scored in {run.mode} mode, {first_folder} in {first.mode} mode")
        if (run.shard.count, run.shard.inputs, run.shard.discovered) != (
            first.shard.count,
            first.shard.inputs,
            first.shard.discovered,
        ):
            raise MergeError(f"{folder}: a slice of other inputs or another split than {first_folder}")
    seen: dict[int, Path] = {}
    for folder, run in runs:
        if run.shard.index in seen:
            raise MergeError(f"{folder}: {run.shard} is given twice (also {seen[run.shard.index]})")
        seen[run.shard.index] = folder
    missing = sorted(set(range(first.shard.count)) - set(seen))
    if missing:
        raise MergeError(
            f"shard{'s' * (len(missing) > 1)} {', '.join(map(str, missing))} of {first.shard.count} missing"
        )
    scored: dict[str, Path] = {}
    for folder, _ in runs:
        for record in read_records(folder):
            if record.scan in scored:
                raise MergeError(f"{record.scan}: scored in {scored[record.scan]} and in {folder}")
            scored[record.scan] = folder
    return sorted(runs, key=lambda pair: pair[1].shard.index)


def merge(out: Path, runs: list[tuple[Path, Results]]) -> Results:
    """Write the joined run.json, results.jsonl and results.csv of `check_shards`' runs into `out`
    (an empty folder)."""
    first = runs[0][1]
    results = Results(
        first.models,
        first.mode,
        [u for _, run in runs for u in run.unreadable],
        notes=list(dict.fromkeys(n for _, run in runs for n in run.notes)),
        merged=[str(folder) for folder, _ in runs],
        found_unreadable=sum(run.found_unreadable for _, run in runs),
    )
    writer = ResultsWriter(out, results)
    for folder, _ in runs:
        batch: list[Record] = []
        for record in read_records(folder):
            record.map = _moved(record.map, folder, out)
            record.map_npy = _moved(record.map_npy, folder, out)
            batch.append(record)
            if len(batch) == BATCH:
                writer.add(batch)
                batch = []
        writer.add(batch)
    writer.close(finished=True)
    return results


def _moved(path: str | None, folder: Path, out: Path) -> str | None:
    """A path relative to a shard folder, made relative to the merged folder."""
    return os.path.relpath(folder / path, out) if path else None
