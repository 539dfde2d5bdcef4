"""Fast-mode scoring with onnxruntime and numpy alone: no torch is imported, so a station's
scorer starts in well under a second and needs no 1 GB framework (the graph: detect.onnx_export)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from anomaly_gan.bundle.meta import COMPONENTS_KEY, NETWORKS_KEY, ONNX_SCORER, BundleError, networks_digest, read_meta
from anomaly_gan.detect.judge import DetectOptions, Judge, Scored


class OnnxDetector(Judge):
    runtime = "onnx"

    def __init__(self, folder: Path, options: DetectOptions) -> None:
        if options.mode not in (None, "fast"):
            raise ValueError(f"--runtime onnx scores in fast mode only (not {options.mode})")
        folder = Path(folder)
        super().__init__(folder, read_meta(folder), replace(options, mode="fast"))
        self.session, self.names = _session(folder)

    def _components(self, x: np.ndarray, ids: list[str]) -> Scored:
        out = self.session.run(None, {"x": np.ascontiguousarray(x, dtype=np.float32)})
        return Scored(dict(zip(self.names, out, strict=False)), out[-2], out[-1])


def _session(folder: Path):
    """The bundle's scorer.onnx in an inference session, and the component names of its outputs;
    BundleError when it is missing, damaged or made from other networks."""
    import onnxruntime

    path = folder / ONNX_SCORER
    if not path.is_file():
        raise BundleError(f"{path}: missing; make it with `anomaly-gan export --onnx {folder}`")
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings about unused initialisers are not the user's
    # no busy-waiting threads: the watch reads the next scans on the other core (line latency 879 -> 151 ms)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for damaged files
        raise BundleError(f"{path}: not a loadable ONNX model ({str(e).strip().splitlines()[0]})") from None
    props = session.get_modelmeta().custom_metadata_map
    if COMPONENTS_KEY not in props or NETWORKS_KEY not in props:
        raise BundleError(f"{path}: not a scorer anomaly-gan exported (no component names)")
    if props[NETWORKS_KEY] != networks_digest(folder):
        raise BundleError(
            f"{path}: exported from other networks than the bundle holds now; run `anomaly-gan export --onnx {folder}`"
        )
    return session, props[COMPONENTS_KEY].split(",")
