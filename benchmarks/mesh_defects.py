"""Defects made in 3-D on the synthetic parts against defects injected into their images.

    python -m benchmarks.mesh_defects [--shape sphere] [--objective gan] [--count 200]

Trains (once) a bundle with default settings on the built-in synthetic scans of the shape
(models/synthetic/<shape>-<objective>; the head learns data/simulate.py's defects only), then
writes two test trees of the same parts from a seed the training scans never used: `synth
--defects mesh` (dent, chunk, foreign body, stain made on the mesh before ray casting) and `synth
--defects image` (data/defects.py's seven kinds in the rendered images), and runs `anomaly-gan
evaluate` on each in fast mode. Prints one row per source; writes reports/synthetic/mesh_defects.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from benchmarks.protocol import ROOT, Report, machine, scratch, train_bundle

SCRATCH = scratch("mesh-defects")
TEST_SEED = 101  # the training scans are rendered with seed 0


def cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "anomaly_gan", *args], check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="sphere")
    parser.add_argument("--objective", default="gan")
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    bundle, minutes = train_bundle(args.shape, args.objective, None, ROOT / "models" / "synthetic")
    report = Report(ROOT / "reports" / "synthetic" / f"mesh_defects_{bundle.name}.md")
    report.add(
        f"# Mesh defects against image defects: {bundle.name}\n",
        f"Machine: {machine()}. Bundle: default settings on the built-in synthetic {args.shape}s "
        f"({minutes:.1f} min to train). Test: {args.count} parts rendered with seed {TEST_SEED}, "
        "half with one defect; fast mode; TPR/FAR at the bundle's calibrated threshold.\n",
        "| defects | image AUROC | per kind | TPR / FAR | object-pixel AUROC | object AU-PRO | "
        "whole-frame pixel AUROC |",
        "|---|---|---|---|---|---|---|",
    )
    for source in ("mesh", "image"):
        tree, out = SCRATCH / source, SCRATCH / f"{source}-eval"
        cli(
            "synth",
            str(tree),
            "--shape",
            args.shape,
            "--count",
            str(args.count),
            "--defect-rate",
            "0.5",
            "--defects",
            source,
            "--seed",
            str(TEST_SEED),
            "--force",
        )
        cli("evaluate", "--model", str(bundle), str(tree / args.shape), "--mode", "fast", "--out", str(out), "--force")
        m = json.loads((out / "metrics.json").read_text())
        kinds = ", ".join(f"{k} {v:.2f}" for k, v in sorted(m["auroc_by_label"].items()))
        verdicts = m["at_threshold"]
        report.add(
            f"| {source} | {m['auroc']:.3f} | {kinds} | {verdicts['tpr']:.2f} / {verdicts['far']:.2f} | "
            f"{m['object_pixel_auroc']:.3f} | {m['object_au_pro_0.3']:.3f} | {m['pixel_auroc']:.3f} |"
        )


if __name__ == "__main__":
    main()
