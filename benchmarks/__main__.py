"""The benchmark suite.

    python -m benchmarks                 # list them, by purpose
    python -m benchmarks NAME [OPTIONS]  # run one (python -m benchmarks NAME --help: its options)

Each prints its table as it goes and writes it under reports/ with the machine it ran on. Paths,
seeds and the validation protocol they share live in benchmarks/protocol.py.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

GROUPS = {
    "Results (the README's table and the reports it links)": (
        "detect_kinect",
        "false_alarms",
        "kinect_table",
        "digits_one_class",
        "synth_vs_real",
    ),
    "Speed and memory": (
        "train_speed",
        "train_kinect",
        "detect_memory",
        "pixel_metrics",
        "line",
        "image_sizes",
        "cuda_kinect",
        "ddp_scaling",
    ),
    "Decision records (an idea measured on validation blocks, kept or not; docs/decisions.md)": (
        "framing_variants",
        "head_variants",
        "heldout_kinds",
        "mesh_defects",
        "patch_memory",
        "refine_restarts",
        "train_ablation",
    ),
}
HERE = Path(__file__).resolve().parent


def summary(name: str) -> str:
    """The first line of a benchmark's docstring, read without importing it (imports load torch)."""
    text = (HERE / f"{name}.py").read_text(encoding="utf-8")
    return text.split('"""', 2)[1].strip().splitlines()[0]


def main(argv: list[str]) -> int:
    names = [n for group in GROUPS.values() for n in group]
    if not argv or argv[0] in ("-h", "--help", "list"):
        print(__doc__.strip().splitlines()[0] + "\n")
        for title, group in GROUPS.items():
            print(title)
            for name in group:
                print(f"  {name:<18} {summary(name)}")
            print()
        print("Run one: python -m benchmarks NAME [OPTIONS]; its options: python -m benchmarks NAME --help")
        return 0
    if argv[0] not in names:
        print(f"error: no benchmark {argv[0]!r}; `python -m benchmarks` lists them", file=sys.stderr)
        return 2
    sys.argv = [f"benchmarks/{argv[0]}.py", *argv[1:]]
    runpy.run_module(f"benchmarks.{argv[0]}", run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
