"""Evaluation figures (matplotlib, PNG bytes so callers write them atomically)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def figure_png(fig) -> bytes:
    """The figure as PNG bytes (callers write them atomically); closes it."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def roc_figure(curves: dict[str, dict], title: str = "ROC") -> bytes:
    """curves: name -> image_metrics() result (several models on one figure)."""
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for name, m in curves.items():
        if m.get("roc"):
            ax.plot(m["roc"]["fpr"], m["roc"]["tpr"], label=f"{name} (AUROC {m['auroc']:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    ax.set(xlabel="false-positive rate", ylabel="true-positive rate", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return figure_png(fig)


def pr_figure(m: dict) -> bytes:
    fig, ax = plt.subplots(figsize=(5, 4.5))
    if m.get("pr"):
        ax.plot(m["pr"]["recall"], m["pr"]["precision"], label=f"AP {m['average_precision']:.3f}")
        ax.legend(loc="lower left")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall", xlim=(0, 1), ylim=(0, 1.01))
    ax.grid(alpha=0.3)
    return figure_png(fig)


def histogram_figure(
    normal: np.ndarray,
    anomalous: np.ndarray,
    threshold: float,
    names: tuple[str, str] = ("normal", "anomalous"),
    title: str = "Score distributions",
    size: tuple[float, float] = (6, 3.5),
) -> bytes:
    """Two score histograms and the threshold; shares of each group, since the groups differ in size."""
    fig, ax = plt.subplots(figsize=size)
    values = np.r_[normal, anomalous, threshold]
    bins = np.linspace(values.min(), values.max(), 40)
    for group, name, colour in ((normal, names[0], "tab:green"), (anomalous, names[1], "tab:red")):
        if len(group):
            ax.hist(
                group,
                bins=bins,
                alpha=0.6,
                color=colour,
                label=f"{name} ({len(group)})",
                weights=np.full(len(group), 1 / len(group)),
            )
    ax.axvline(threshold, color="black", ls="--", label=f"threshold {threshold:.2f}")
    ax.set(xlabel="anomaly score", ylabel="share of scans", title=title)
    ax.legend(fontsize=8)
    return figure_png(fig)


def threshold_sweep_figure(labels: np.ndarray, scores: np.ndarray, threshold: float) -> bytes:
    """Accuracy, TPR and TNR as the threshold moves (the publication's trade-off figure)."""
    labels, scores = np.asarray(labels, int), np.asarray(scores, float)
    grid = np.linspace(scores.min(), scores.max(), 200)
    positive = scores[None, :] >= grid[:, None]
    tpr = (positive & (labels == 1)).sum(1) / max((labels == 1).sum(), 1)
    tnr = (~positive & (labels == 0)).sum(1) / max((labels == 0).sum(), 1)
    accuracy = ((positive == (labels == 1)).sum(1)) / len(labels)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for y, name in ((accuracy, "accuracy"), (tpr, "TPR (anomalies caught)"), (tnr, "TNR (good passed)")):
        ax.plot(grid, y, label=name)
    ax.axvline(threshold, color="black", ls="--", label="threshold in force")
    ax.set(xlabel="threshold", ylabel="rate", ylim=(0, 1.02), title="Trade-off against threshold")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return figure_png(fig)
