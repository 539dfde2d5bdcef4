"""`anomaly-gan export --onnx`: a bundle's fast-mode scoring as one ONNX graph, so a station can
score scans with onnxruntime and numpy alone (detect.onnx_runtime), without torch.

The graph is the same code as the torch path (detect.invert.invert_fast, detect.components) run on
eager copies of the bundle's networks and exported with torch.export: (B, 4, S, S) framed scans in,
one (B,) output per score component, the maps and the reconstruction out. The model's metadata
names the components and the digest of the networks it came from.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import torch
from torch import nn

from anomaly_gan.bundle.meta import COMPONENTS_KEY, NETWORKS_KEY, ONNX_SCORER, networks_digest
from anomaly_gan.bundle.store import Bundle, load_bundle
from anomaly_gan.detect.components import components, full_recon
from anomaly_gan.detect.invert import invert_fast
from anomaly_gan.fsutil import atomic_write_bytes
from anomaly_gan.models.dcgan import Critic, Encoder, Generator
from anomaly_gan.models.segmenter import Segmenter

OPSET = 18


def _eager(module: nn.Module, scripted: torch.jit.ScriptModule) -> nn.Module:
    module.load_state_dict(scripted.state_dict())
    return module.eval()


class FastScoring(nn.Module):
    """Fast mode end to end: encoder, generator, critic and head, then the components."""

    def __init__(self, bundle: Bundle) -> None:
        super().__init__()
        net = bundle.meta.network
        self.generator = _eager(Generator(net), bundle.generator)
        self.critic = _eager(Critic(net), bundle.critic)
        self.encoder = _eager(Encoder(net), bundle.encoder)
        self.segmenter = _eager(Segmenter(bundle.meta.segmenter), bundle.segmenter) if bundle.segmenter else None
        self.channels = bundle.meta.channels
        example = torch.zeros(1, 4, net.image_size, net.image_size)
        self.names = list(self._values(example)[0])

    def _values(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        inversion = invert_fast(self.generator, self.encoder, self.channels.pick(x))
        recon = full_recon(x, inversion.recon, self.channels)
        values, maps = components(x, recon, self.critic, inversion.loss, self.segmenter, self.channels)
        return values, maps, recon

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        values, maps, recon = self._values(x)
        return (*(values[k] for k in self.names), maps, recon)


def export_onnx(folder: Path) -> Path:
    """Write <bundle>/scorer.onnx (atomically) and return its path."""
    import onnx

    bundle = load_bundle(folder)
    model = FastScoring(bundle)
    size = bundle.meta.network.image_size
    example = (torch.rand(2, 4, size, size) * 2 - 1,)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            example,
            dynamo=True,
            opset_version=OPSET,
            input_names=["x"],
            output_names=[*model.names, "maps", "recon"],
            dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1)}},
            verbose=False,
        )
    proto = program.model_proto
    for key, value in ((COMPONENTS_KEY, ",".join(model.names)), (NETWORKS_KEY, networks_digest(folder))):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    path = folder / ONNX_SCORER
    atomic_write_bytes(path, onnx.ModelProto.SerializeToString(proto))
    return path
