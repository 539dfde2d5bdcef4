"""Detection quality and speed on the real Kinect scans (block split), per class, objective and mode.

    python -m benchmarks.detect_kinect            # trains missing bundles (about 75 min on 2 cores)

Prints and writes reports/kinect/detect_benchmark.md: cross-class AUROC (the publication's task),
injected-defect image and pixel AUROC, scans/s per mode, training minutes, the nearest-neighbour
baseline and the published figures, and the speed ratios the targets name.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.data.layouts import find_scans, iter_scans
from anomaly_gan.detect.detector import DetectOptions, Detector
from anomaly_gan.detect.invert import invert_seed_unbatched
from anomaly_gan.fsutil import atomic_write_text
from anomaly_gan.report.metrics import pixel_auroc
from benchmarks.kinect import (
    BASELINE_NN,
    CLASSES,
    KINECT,
    PUBLISHED,
    auroc,
    block_split,
    injected_copies,
    machine,
    nearest_neighbour_scores,
    timed_score,
    train_bundle,
)

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models" / "kinect-split"
OUT = ROOT / "reports" / "kinect"
OBJECTIVES = ("gan", "wgan-gp")
SEED_SUBSET = 3  # seed mode is slow: every 3rd test scan


def unbatched_seed_rate(detector: Detector, scans: list, count: int = 6) -> float:
    """The publication's form: one scan, one restart at a time, a fresh generator copy each."""
    generator = detector.bundle.eager_generator()
    device = next(generator.parameters()).device
    x = detector.tensor(scans[:count]).to(device)
    starts = torch.randn(count, 3, detector.bundle.meta.network.latent).to(device)
    started = time.perf_counter()
    invert_seed_unbatched(generator, x, detector.bundle.meta.invert, starts)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return count / (time.perf_counter() - started)


def fast_floor(detector: Detector) -> tuple[float, float]:
    """FLOPs of E + G + 2 D per scan (fast mode), and this machine's float32 matmul rate."""
    x = torch.rand(64, 4, 64, 64) * 2 - 1
    b = detector.bundle
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        recon = b.eager_generator()(b.encoder(x))
        b.critic(x)
        b.critic(recon)
    flops_per_scan = counter.get_total_flops() / 64
    a = torch.randn(2048, 2048)
    torch.mm(a, a)
    started = time.perf_counter()
    for _ in range(10):
        torch.mm(a, a)
    matmul = 10 * 2 * 2048**3 / (time.perf_counter() - started)
    return flops_per_scan, matmul


def main() -> None:
    roots = block_split(KINECT, Path("/tmp/anomaly-gan-kinect-split"))
    test = {c: [s for _, s in iter_scans(find_scans(roots["test"] / c).refs)] for c in CLASSES}
    train_refs = {c: find_scans(roots["train"] / c).refs for c in CLASSES}
    lines = [f"# Detection benchmark: Kinect scans, block split\n\nMachine: {machine()}. "
             f"Split: blocks of 25 consecutive frames, every 4th block is test "
             f"({', '.join(f'{c} {len(test[c])}' for c in CLASSES)} test scans). Seed mode on every "
             f"{SEED_SUBSET}rd test scan. Cross-class: the other two classes are the anomalies. "
             "Injected: each test scan once good and once with one random defect of the 7 kinds. scans/s: "
             "over every scan a row scores (good, other classes, injected) in one stream of batches of 64, "
             "after one untimed batch (TorchScript optimises its graphs on the first calls; a detect run "
             "pays that once).\n",
             "| class | objective | train min | mode | cross-class AUROC | published | NN baseline | "
             "injected image AUROC | injected pixel AUROC | scans/s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    speed_notes = []
    for objective in OBJECTIVES:
        for cls in CLASSES:
            bundle, minutes = train_bundle(cls, objective, roots["train"], MODELS)
            normal, others = test[cls], [s for c in CLASSES if c != cls for s in test[c]]
            defective = injected_copies(normal, seed=0, copies=1)
            nn_normal = nearest_neighbour_scores(train_refs[cls], find_scans(roots["test"] / cls).refs)
            nn_other = np.concatenate([nearest_neighbour_scores(train_refs[cls], find_scans(roots["test"] / c).refs)
                                       for c in CLASSES if c != cls])
            published = PUBLISHED[cls][OBJECTIVES.index(objective)]
            for mode in ("fast", "refine", "seed"):
                detector = Detector(load_bundle(bundle), DetectOptions(mode, 64), torch.device("cpu"))
                step = SEED_SUBSET if mode == "seed" else 1
                if mode != "seed":  # seed's generator runs eagerly and needs no warm-up
                    detector.score(normal[:detector.options.batch_size])
                parts = [some[::step] for some in (normal, others, defective)]
                # one stream of batches, as `detect` streams a folder
                scored, rate = timed_score(detector, [s for part in parts for s in part])
                scores, all_maps = scored.scores, scored.scored.maps
                ends = np.cumsum([len(part) for part in parts])[:2]
                s_n, s_o, s_d = np.split(scores, ends)
                good_maps, _, maps = np.split(all_maps, ends)
                masks = np.array([np.zeros_like(m, bool) for m in good_maps] + [s.gt for s in defective[::step]])
                pixel = pixel_auroc(masks, np.concatenate([good_maps, maps]))
                row = (f"| {cls} | {objective} | {minutes:.1f} | {mode} | {auroc(s_n, s_o):.3f} | {published:.2f} | "
                       f"{auroc(nn_normal, nn_other):.3f} (README {BASELINE_NN[cls]:.2f}) | "
                       f"{auroc(s_n, s_d):.3f} | {pixel:.3f} | {rate:.1f} |")
                print(row, flush=True)
                lines.append(row)
                atomic_write_text(OUT / "detect_benchmark.md", "\n".join(lines) + "\n")  # survives a stop
                if mode == "fast" and cls == CLASSES[0]:
                    flops, matmul = fast_floor(detector)
                    floor = matmul / flops
                    speed_notes.append(f"- {objective}: fast mode {rate:.0f} scans/s; E+G+2D = {flops / 1e6:.0f} MFLOP "
                                       f"per scan, matmul rate {matmul / 1e9:.1f} GFLOP/s, so the compute floor is "
                                       f"{floor:.0f} scans/s and fast mode reaches {rate / floor:.0%} of it.")
                if mode == "refine" and cls == CLASSES[0]:
                    seed_rate = unbatched_seed_rate(detector, normal)
                    speed_notes.append(f"- {objective}: refine {rate:.1f} scans/s vs the unbatched seed form "
                                       f"{seed_rate:.2f} scans/s: ratio {rate / seed_rate:.1f}x.")
    text = "\n".join(lines + ["", "Speed:"] + speed_notes) + "\n"
    print("\n".join(speed_notes))
    atomic_write_text(OUT / "detect_benchmark.md", text)


if __name__ == "__main__":
    main()
