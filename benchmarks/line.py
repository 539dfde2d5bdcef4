"""A station's line: `anomaly-gan watch` on a stream of scans written over time, and the ONNX path.

    python -m benchmarks line [--bundle models/kinect/sphere-gan] [--count 10000] [--runtimes torch onnx]

The stream: the Kinect sphere scans (../shared/datasets/kinect-shapes), copied again and again
under new names into a watched seed-layout folder, each file written to a temporary name and
renamed when complete (what a camera's writer should do). For each runtime:
- the fast core: `Judge.score` on batches of 64 already decoded scans, scans/s (the reference);
- latency: a paced stream at half the core's rate; from a pair's last rename to its record in
  results.jsonl (polled every 5 ms), median and 95th percentile;
- sustained rate: the rest of the --count scans written as fast as the writer can; records per
  second from the first to the last, against the core's rate;
- memory: the watch process's resident memory after the paced scans, at the kill, and (restarted) at the end;
- a kill -9 in the middle and a restart: scans recorded once each, none missing.
Start-up: a fresh process importing the runtime, loading the bundle and scoring one scan.
Writes reports/line.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks.protocol import KINECT, REPORTS, ROOT, Report, machine, scratch

PACED_SCANS = 300
BATCH = 64


def core_rate(bundle: Path, runtime: str) -> float:
    """Scans/s of Judge.score on decoded scans (best of 3 passes over 320 scans)."""
    from anomaly_gan.data.layouts import find_scans, iter_scans
    from anomaly_gan.detect.judge import DetectOptions

    scans = [s for _, s in iter_scans(find_scans(KINECT / "sphere").refs[:320])]
    if runtime == "onnx":
        from anomaly_gan.detect.onnx_runtime import OnnxDetector

        judge = OnnxDetector(bundle, DetectOptions("fast", batch_size=BATCH))
    else:
        import torch

        from anomaly_gan.bundle.store import load_bundle
        from anomaly_gan.detect.detector import Detector

        judge = Detector(load_bundle(bundle), DetectOptions("fast", batch_size=BATCH), torch.device("cpu"))
    judge.score(scans[:BATCH])  # warm-up
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        judge.score(scans)
        best = max(best, len(scans) / (time.perf_counter() - start))
    return best


def startup(bundle: Path, runtime: str) -> float:
    """Seconds for a fresh process to import the runtime, load the bundle and score one scan."""
    load = (
        "from anomaly_gan.detect.onnx_runtime import OnnxDetector as D; j = D(b, DetectOptions('fast'))"
        if runtime == "onnx"
        else "import torch; from anomaly_gan.bundle.store import load_bundle; "
        "from anomaly_gan.detect.detector import Detector; j = Detector(load_bundle(b), DetectOptions('fast'), "
        "torch.device('cpu'))"
    )
    code = (
        "import time; t = time.perf_counter(); from pathlib import Path; "
        "from anomaly_gan.detect.judge import DetectOptions; "
        "from anomaly_gan.data.layouts import find_scans, load_scan; "
        f"b = Path({str(bundle)!r}); {load}; "
        f"j.score([load_scan(find_scans(Path({str(KINECT / 'sphere')!r})).refs[0])]); "
        "print(time.perf_counter() - t)"
    )
    runs = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        for _ in range(3)
    ]
    return min(runs)


class Stream:
    """Writes scans into the watched folder (temporary name, then rename) and notes each one's time."""

    def __init__(self, line: Path) -> None:
        self.line = line
        self.sources = sorted((KINECT / "sphere" / "RGB_Final").iterdir())
        self.written: dict[str, float] = {}  # colour file path -> when its pair was complete
        self.count = itertools.count()
        for sub in ("RGB_Final", "Depth_Final"):
            (line / sub).mkdir(parents=True, exist_ok=True)

    def write(self, n: int, per_second: float | None) -> None:
        start = time.perf_counter()
        for k in range(n):
            if per_second:
                time.sleep(max(0.0, start + k / per_second - time.perf_counter()))
            i = next(self.count)
            src = self.sources[i % len(self.sources)]
            name = f"{i:06d}"
            for sub, source in (
                ("Depth_Final", KINECT / "sphere" / "Depth_Final" / f"{src.stem}.png"),
                ("RGB_Final", src),
            ):
                dst = self.line / sub / f"{name}{source.suffix}"
                tmp = self.line / sub / f".{name}{source.suffix}.tmp"
                shutil.copyfile(source, tmp)
                os.replace(tmp, dst)
            self.written[str(self.line / "RGB_Final" / f"{name}{src.suffix}")] = time.perf_counter()


class Records:
    """Follows the watch's results.jsonl files and notes when each record appeared."""

    def __init__(self, out: Path) -> None:
        self.out, self.seen, self.times = out, {}, []  # scan -> when first seen; all appearances
        self.offsets: dict[Path, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()

    def _follow(self) -> None:
        while not self.stop.is_set():
            for path in self.out.glob("*/results.jsonl"):
                with path.open() as f:
                    f.seek(self.offsets.get(path, 0))
                    text = f.read()
                complete = text[: text.rfind("\n") + 1]
                self.offsets[path] = self.offsets.get(path, 0) + len(complete.encode())
                now = time.perf_counter()
                for line in complete.splitlines():
                    scan = json.loads(line)["scan"]
                    self.times.append((scan, now))
                    self.seen.setdefault(scan, now)
            self.stop.wait(0.005)

    def wait(self, count: int, limit_s: float) -> None:
        deadline = time.perf_counter() + limit_s
        while len(self.seen) < count and time.perf_counter() < deadline:
            time.sleep(0.05)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_watch(line: Path, bundle: Path, out: Path, runtime: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "anomaly_gan", "watch", str(line), "--model", str(bundle), "--out", str(out)]
    watch = subprocess.Popen(
        [*cmd, "--runtime", runtime, "--device", "cpu"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    time.sleep(1.0)
    return watch


def run_line(bundle: Path, runtime: str, count: int, core: float) -> dict:
    folder = scratch(f"line-{runtime}")
    shutil.rmtree(folder, ignore_errors=True)
    line, out = folder / "line", folder / "out"
    stream = Stream(line)
    watch = start_watch(line, bundle, out, runtime)
    records = Records(out)
    time.sleep(8.0 if runtime == "torch" else 2.0)  # the watch loads its bundle
    stream.write(PACED_SCANS, per_second=core / 2)
    records.wait(PACED_SCANS, 60)
    latencies = sorted(
        records.seen[s] - stream.written[s] for s in list(stream.written)[:PACED_SCANS] if s in records.seen
    )
    rss = [rss_mb(watch.pid)]
    half = (count - PACED_SCANS) // 2
    stream.write(half, per_second=None)
    records.wait(PACED_SCANS + half, 600)
    rss.append(rss_mb(watch.pid))
    watch.send_signal(signal.SIGKILL)
    watch.wait()
    restarted = start_watch(line, bundle, out, runtime)
    burst_start = time.perf_counter()
    stream.write(count - PACED_SCANS - half, per_second=None)
    records.wait(count, 900)
    burst_s = time.perf_counter() - burst_start
    rss.append(rss_mb(restarted.pid))
    restarted.send_signal(signal.SIGTERM)
    _, stderr = restarted.communicate(timeout=120)
    time.sleep(0.2)
    records.stop.set()
    scans = [s for s, _ in records.times]
    shutil.rmtree(folder, ignore_errors=True)
    return {
        "sustained": (count - PACED_SCANS - half) / burst_s,
        "p50": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p95": latencies[int(0.95 * (len(latencies) - 1))] * 1000 if latencies else float("nan"),
        "rss": " / ".join(f"{m:.0f}" for m in rss),
        "recorded": len(set(scans)),
        "doubled": len(scans) - len(set(scans)),
        "missing": len(set(stream.written) - set(scans)),
        "problems": [line for line in stderr.splitlines() if "skipped" in line or "Traceback" in line][:3],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=ROOT / "models" / "kinect" / "sphere-gan")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--runtimes", nargs="+", default=["torch", "onnx"])
    args = parser.parse_args()
    bundle = scratch("line-bundle") / args.bundle.name
    if "onnx" in args.runtimes:  # exported into a scratch copy: the shipped bundles stay as they are
        shutil.rmtree(bundle, ignore_errors=True)
        shutil.copytree(args.bundle, bundle, ignore=shutil.ignore_patterns("*.png", "*.jpg", "*.log", "checkpoint*"))
        subprocess.run(
            [sys.executable, "-m", "anomaly_gan", "export", "--onnx", str(bundle)], check=True, capture_output=True
        )
    else:
        bundle = args.bundle
    report = Report(REPORTS / "line.md")
    report.add(
        "# The line: watch and the ONNX path\n",
        f"Machine: {machine()}. Command: `python -m benchmarks line --bundle {args.bundle} --count {args.count} "
        f"--runtimes {' '.join(args.runtimes)}`. Stream: Kinect sphere scans copied under new names (temporary name, "
        f"then rename), {PACED_SCANS} paced at half the core's rate for latency, the rest as fast as written, with a "
        "kill -9 and restart half way.\n",
        "| runtime | start-up s | core scans/s | watch sustained scans/s | share of core | latency p50 / p95 ms | "
        "RSS MB (after the paced scans / at the kill / restarted, at the end) | recorded | doubled | missing |",
        "|---|---|---|---|---|---|---|---|---|---|",
    )
    for runtime in args.runtimes:
        core = core_rate(bundle, runtime)
        start = startup(bundle, runtime)
        r = run_line(bundle, runtime, args.count, core)
        report.add(
            f"| {runtime} | {start:.2f} | {core:.0f} | {r['sustained']:.0f} | {r['sustained'] / core:.0%} | "
            f"{r['p50']:.0f} / {r['p95']:.0f} | {r['rss']} | {r['recorded']} | "
            f"{r['doubled']} | {r['missing']} |"
        )
        for line in r["problems"]:
            report.add(f"    {runtime}: {line}")


if __name__ == "__main__":
    main()
