"""Detection quality and speed on the real Kinect scans (block split), per class, objective and mode.

    python -m benchmarks.detect_kinect [--classes ...] [--objectives ...]   # trains missing bundles

Prints and writes reports/kinect/detect_benchmark.md: cross-class AUROC (the publication's task);
on defects injected into the test scans by data/defects.py (three copies of each test scan, a random
stream of its own; the head and the calibration never see this injector): image AUROC overall and
per kind, TPR at the calibrated 1% false-alarm threshold, object-pixel AUROC and AU-PRO (pixels of
the dilated object only) beside whole-frame pixel AUROC; scans/s per mode, training minutes, the
nearest-neighbour baseline, the published figures and the speed ratios.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.data.defects import DEFECTS
from anomaly_gan.data.layouts import find_scans, iter_scans
from anomaly_gan.detect.detector import Detector
from anomaly_gan.detect.evaluate import PixelTruth
from anomaly_gan.detect.invert import invert_seed_unbatched
from anomaly_gan.detect.judge import DetectOptions, ScanScores
from anomaly_gan.fsutil import atomic_write_text
from benchmarks.protocol import (
    CLASSES,
    KINECT,
    MODELS,
    PUBLISHED,
    ROOT,
    SPLIT,
    auroc,
    block_split,
    injected_copies,
    machine,
    nearest_neighbour_scores,
    timed_score,
    train_bundle,
)

OUT = ROOT / "reports" / "kinect"
OBJECTIVES = ("gan", "wgan-gp")
SEED_SUBSET = 3  # seed mode is slow: every 3rd test scan
INJECTED_COPIES = 3


def unbatched_seed_rate(detector: Detector, scans: list, count: int = 6) -> float:
    """The publication's form: one scan, one restart at a time, a fresh generator copy each."""
    generator = detector.bundle.eager_generator()
    device = next(generator.parameters()).device
    x = detector.tensor(scans[:count])[0].to(device)
    starts = torch.randn(count, 3, detector.bundle.meta.network.latent).to(device)
    started = time.perf_counter()
    invert_seed_unbatched(generator, x, detector.bundle.meta.invert, starts)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return count / (time.perf_counter() - started)


def fast_floor(detector: Detector) -> tuple[float, float]:
    """FLOPs of E + G + 2 D (+ head) per scan (fast mode), and this machine's float32 matmul rate."""
    x = torch.rand(64, 4, 64, 64) * 2 - 1
    b = detector.bundle
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        recon = b.eager_generator()(b.encoder(x))
        b.critic(x)
        b.critic(recon)
        if b.segmenter is not None:
            b.segmenter(x, recon)
    flops_per_scan = counter.get_total_flops() / 64
    a = torch.randn(2048, 2048)
    torch.mm(a, a)
    started = time.perf_counter()
    for _ in range(10):
        torch.mm(a, a)
    matmul = 10 * 2 * 2048**3 / (time.perf_counter() - started)
    return flops_per_scan, matmul


def injected_metrics(
    normal: list, normal_scored: ScanScores, injected: list, injected_scored: ScanScores
) -> dict[str, float]:
    """Image AUROC (all kinds and per kind), TPR at the calibrated threshold, pixel metrics."""
    labels = [s.label for s in injected]
    result = {
        "image": auroc(normal_scored.scores, injected_scored.scores),
        "tpr": float(injected_scored.anomalous.mean()),
        "far": float(normal_scored.anomalous.mean()),
    }
    for kind in sorted(set(labels)):
        picked = injected_scored.scores[[label == kind for label in labels]]
        result[kind] = auroc(normal_scored.scores, picked)
    truth = PixelTruth()
    truth(normal, normal_scored)
    truth(injected, injected_scored)
    pixel = truth.metrics()
    result.update(
        pixel=pixel["pixel_auroc"], object_pixel=pixel["object_pixel_auroc"], object_pro=pixel["object_au_pro_0.3"]
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", nargs="+", default=list(CLASSES), choices=CLASSES)
    parser.add_argument("--objectives", nargs="+", default=list(OBJECTIVES), choices=OBJECTIVES)
    parser.add_argument("--modes", nargs="+", default=["fast", "refine", "seed"])
    parser.add_argument(
        "--report",
        type=Path,
        default=OUT / "detect_benchmark.md",
        help="where the table goes (a partial run: keep the full table)",
    )
    args = parser.parse_args()
    roots = block_split(KINECT, SPLIT)
    test = {c: [s for _, s in iter_scans(find_scans(roots["test"] / c).refs)] for c in CLASSES}
    train_refs = {c: find_scans(roots["train"] / c).refs for c in CLASSES}
    lines = [
        f"# Detection benchmark: Kinect scans, block split\n\nMachine: {machine()}. "
        f"Split: blocks of 25 consecutive frames, every 4th block is test "
        f"({', '.join(f'{c} {len(test[c])}' for c in CLASSES)} test scans). Seed mode on every "
        f"{SEED_SUBSET}rd test scan. Cross-class: the other two classes are the anomalies. "
        f"Injected: each test scan {INJECTED_COPIES} times with one random defect of data/defects.py's 7 kinds "
        "(evaluation stream; the head and calibration train on data/simulate.py only). TPR/FAR: at the "
        "bundle's calibrated threshold (1% false alarms on its held-out good blocks). Object-pixel: pixels "
        "of the object and the defect, dilated by 2, only. scans/s: over every scan a row scores, in one "
        "stream of batches of 64, after one untimed batch.\n",
        "| class | objective | train min | mode | cross-class AUROC | published | NN baseline | "
        "injected image AUROC | TPR / FAR at threshold | object-pixel AUROC | object AU-PRO | "
        "whole-frame pixel AUROC | scans/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    kinds_table = ["", "Injected image AUROC per defect kind (each kind against the good test scans):", ""]
    speed_notes = []
    for objective in args.objectives:
        for cls in args.classes:
            bundle, minutes = train_bundle(cls, objective, roots["train"], MODELS)
            normal, others = test[cls], [s for c in CLASSES if c != cls for s in test[c]]
            injected = injected_copies(normal, seed=0, copies=INJECTED_COPIES)
            nn_normal = nearest_neighbour_scores(train_refs[cls], find_scans(roots["test"] / cls).refs)
            nn_other = np.concatenate(
                [
                    nearest_neighbour_scores(train_refs[cls], find_scans(roots["test"] / c).refs)
                    for c in CLASSES
                    if c != cls
                ]
            )
            published = PUBLISHED[cls][OBJECTIVES.index(objective)]
            for mode in args.modes:
                detector = Detector(load_bundle(bundle), DetectOptions(mode, 64), torch.device("cpu"))
                step = SEED_SUBSET if mode == "seed" else 1
                if mode != "seed":  # seed's generator runs eagerly and needs no warm-up
                    detector.score(normal[: detector.options.batch_size])
                parts = [some[::step] for some in (normal, others, injected)]
                scored, rate = timed_score(detector, [s for part in parts for s in part])  # one stream
                n, o = len(parts[0]), len(parts[1])
                pick = [scored.part(a, b) for a, b in ((0, n), (n, n + o), (n + o, len(scored.scores)))]
                m = injected_metrics(parts[0], pick[0], parts[2], pick[2])
                cross = auroc(pick[0].scores, pick[1].scores)
                row = (
                    f"| {cls} | {objective} | {minutes:.1f} | {mode} | {cross:.3f} | "
                    f"{published:.2f} | {auroc(nn_normal, nn_other):.3f} | {m['image']:.3f} | "
                    f"{m['tpr']:.2f} / {m['far']:.2f} | {m['object_pixel']:.3f} | {m['object_pro']:.3f} | "
                    f"{m['pixel']:.3f} | {rate:.1f} |"
                )
                print(row, flush=True)
                lines.append(row)
                if mode == "fast":
                    kinds = sorted(k for k in m if k in DEFECTS)
                    if len(kinds_table) == 3:
                        kinds_table += ["| bundle | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
                    kinds_table.append(f"| {cls}-{objective} | " + " | ".join(f"{m[k]:.3f}" for k in kinds) + " |")
                atomic_write_text(args.report, "\n".join(lines + kinds_table) + "\n")
                if mode == "fast" and cls == args.classes[0]:
                    flops, matmul = fast_floor(detector)
                    floor = matmul / flops
                    speed_notes.append(
                        f"- {objective}: fast mode {rate:.0f} scans/s; E+G+2D+head = {flops / 1e6:.0f} "
                        f"MFLOP per scan, matmul rate {matmul / 1e9:.1f} GFLOP/s, so the compute floor "
                        f"is {floor:.0f} scans/s and fast mode reaches {rate / floor:.0%} of it."
                    )
                if mode == "refine" and cls == args.classes[0]:
                    seed_rate = unbatched_seed_rate(detector, normal)
                    speed_notes.append(
                        f"- {objective}: refine {rate:.1f} scans/s vs the unbatched seed form "
                        f"{seed_rate:.2f} scans/s: ratio {rate / seed_rate:.1f}x."
                    )
    text = "\n".join(lines + kinds_table + ["", "Speed:"] + speed_notes) + "\n"
    print("\n".join(kinds_table + speed_notes))
    atomic_write_text(args.report, text)


if __name__ == "__main__":
    main()
