"""The benchmark suite lists every benchmark once and writes nothing to fixed /tmp paths."""

import re
import subprocess
import sys
from pathlib import Path

from benchmarks.__main__ import GROUPS

HERE = Path(__file__).resolve().parents[1] / "benchmarks"
SHARED = {"__init__", "__main__", "protocol"}


def test_every_benchmark_is_listed_once_in_a_group() -> None:
    listed = [name for group in GROUPS.values() for name in group]
    on_disk = sorted(p.stem for p in HERE.glob("*.py") if p.stem not in SHARED)
    assert sorted(listed) == on_disk


def test_paths_come_from_the_protocol_module() -> None:
    for path in HERE.glob("*.py"):
        code = path.read_text(encoding="utf-8")
        assert not re.search(r'Path\("/tmp', code), f"{path.name}: a hard-coded /tmp path; use protocol.scratch"
        assert "parents[1]" not in code or path.stem == "protocol", f"{path.name}: use protocol.ROOT"


def test_the_listing_and_an_unknown_name() -> None:
    listing = subprocess.run([sys.executable, "-m", "benchmarks"], capture_output=True, text=True, cwd=HERE.parent)
    assert listing.returncode == 0 and "train_speed" in listing.stdout
    unknown = subprocess.run(
        [sys.executable, "-m", "benchmarks", "nope"], capture_output=True, text=True, cwd=HERE.parent
    )
    assert unknown.returncode == 2 and "nope" in unknown.stderr
