"""What training shows: a per-step log, sample grids from a fixed z, curves, a GIF, interpolation."""

from __future__ import annotations

import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from anomaly_gan.fsutil import atomic_write_bytes, atomic_write_text  # noqa: E402
from anomaly_gan.report.images import grid, save_rgb, scan_tile, upscale  # noqa: E402
from anomaly_gan.report.plots import figure_png  # noqa: E402

LOG = "train_log.jsonl"


class TrainLog:
    """Append-only JSON-lines log; on resume, rows past the checkpoint are dropped. With no folder
    (a torchrun rank other than 0) it writes nothing."""

    def __init__(self, folder: Path | None, resume_from: dict[str, int] | None = None) -> None:
        self.path = folder / LOG if folder else None
        self._file = None
        if self.path:
            kept = [r for r in self.rows() if resume_from and r["step"] <= resume_from.get(r["phase"], 0)]
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
            self._file = self.path.open("a", encoding="utf-8")

    def rows(self) -> list[dict]:
        if not self.path or not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut by an interrupt ends the log
        return rows

    def write(self, phase: str, row: dict[str, float]) -> None:
        if self._file:
            self._file.write(json.dumps({"phase": phase, **row}) + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file:
            self._file.close()


@torch.no_grad()
def sample_grid(generator: torch.nn.Module, z: torch.Tensor) -> np.ndarray:
    was_training = generator.training
    generator.eval()
    samples = generator(z).float().cpu().numpy()
    generator.train(was_training)
    return grid([scan_tile(s) for s in samples], columns=4)


def save_samples(folder: Path, generator: torch.nn.Module, z: torch.Tensor, step: int) -> None:
    save_rgb(folder / "samples" / f"step_{step:06d}.png", upscale(sample_grid(generator, z), 2))


def save_gif(folder: Path) -> None:
    frames = [Image.open(p) for p in sorted((folder / "samples").glob("step_*.png"))]
    if frames:
        buffer = io.BytesIO()
        frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=300, loop=0)
        atomic_write_bytes(folder / "progress.gif", buffer.getvalue())


@torch.no_grad()
def save_interpolation(folder: Path, generator: torch.nn.Module, z: torch.Tensor, steps: int = 10) -> None:
    """Slerp between pairs of fixed codes: a smooth strip means G learned a continuous space."""
    generator.eval()
    rows = []
    for a, b in ((z[0], z[1]), (z[2], z[3]), (z[4], z[5])):
        omega = torch.arccos(torch.clamp(torch.dot(a / a.norm(), b / b.norm()), -1, 1))
        t = torch.linspace(0, 1, steps, device=z.device)[:, None]
        path = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)
        rows += [scan_tile(s) for s in generator(path).float().cpu().numpy()]
    save_rgb(folder / "interpolation.png", upscale(grid(rows, columns=steps), 2))


def _series(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(r["step"], r[key]) for r in rows if key in r]
    return (np.array([p[0] for p in pts]), np.array([p[1] for p in pts])) if pts else (np.array([]), np.array([]))


def _smooth(y: np.ndarray, n: int = 25) -> np.ndarray:
    if y.size < n:
        return y
    return np.convolve(np.pad(y, (n // 2, n - 1 - n // 2), mode="edge"), np.ones(n) / n, mode="valid")


def save_plots(folder: Path, rows: list[dict]) -> list[str]:
    """One PNG per question a person asks about a GAN run; returns the file names written."""
    gan = [r for r in rows if r["phase"] == "gan"]
    enc = [r for r in rows if r["phase"] == "encoder"]
    panels = {
        "losses.png": ("Losses", gan, ["d_loss", "g_loss"]),
        "critic_scores.png": ("Critic on real D(x) and fake D(G(z))", gan, ["d_x", "d_g_z"]),
        "accuracy.png": ("Critic accuracy", gan, ["acc_real", "acc_fake"]),
        "wasserstein.png": ("Wasserstein estimate and gradient penalty", gan, ["wasserstein", "gradient_penalty"]),
        "encoder.png": ("Encoder (izi_f) loss", enc, ["e_loss", "e_image", "e_feature"]),
        "head.png": (
            "Segmentation head loss (simulated defects)",
            [r for r in rows if r["phase"] == "head"],
            ["h_loss", "h_focal", "h_dice"],
        ),
    }
    written = []
    for name, (title, data, keys) in panels.items():
        series = {k: _series(data, k) for k in keys}
        if not any(len(x) for x, _ in series.values()):
            continue
        fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
        for key, (x, y) in series.items():
            if len(x):
                ax.plot(x, y, alpha=0.25, lw=0.8)
                ax.plot(x, _smooth(y), label=key, color=ax.lines[-1].get_color())
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.legend()
        ax.grid(alpha=0.3)
        atomic_write_bytes(folder / "plots" / name, figure_png(fig))
        written.append(name)
    return written
