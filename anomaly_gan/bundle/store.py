"""Bundles on disk: TorchScript generator, critic, encoder (and segmentation head) plus model.json.

The networks load with `torch.jit.load` alone, without this package. Loading checks the format
version and turns every way a bundle can be broken into one BundleError line naming the file.
"""

from __future__ import annotations

import io
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from anomaly_gan.bundle.meta import BundleError, BundleMeta, read_meta
from anomaly_gan.fsutil import atomic_write_bytes, atomic_write_json
from anomaly_gan.models.config import NetConfig
from anomaly_gan.models.dcgan import Generator

NETWORKS = ("generator", "critic", "encoder")


@contextmanager
def quiet_torchscript():
    """torch.jit.trace/load warn that TorchScript is deprecated; our bundle format is TorchScript."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # GroupNorm's batch check
        warnings.filterwarnings("ignore", message=".*TorchScript.*")
        yield


@dataclass
class Bundle:
    path: Path
    meta: BundleMeta
    generator: torch.jit.ScriptModule
    critic: torch.jit.ScriptModule
    encoder: torch.jit.ScriptModule
    segmenter: torch.jit.ScriptModule | None = None

    @property
    def label(self) -> str:
        return self.meta.label

    def eager_generator(self) -> Generator:
        """An nn.Module copy of the generator (seed mode needs per-scan weight copies)."""
        generator = Generator(self.meta.network)
        generator.load_state_dict(self.generator.state_dict())
        return generator.to(next(self.generator.parameters()).device).eval()

    def to(self, device: torch.device) -> Bundle:
        """Move the networks; channels-last weights run the convolutions about 1.3x faster on CPU."""
        for name in (*NETWORKS, "segmenter"):
            if getattr(self, name) is not None:
                getattr(self, name).to(device, memory_format=torch.channels_last)
        return self


def export_networks(folder: Path, networks: dict[str, torch.nn.Module], net: NetConfig) -> None:
    """Trace each network in eval mode on the CPU and save it atomically."""
    example = {
        "generator": torch.randn(2, net.latent),
        "critic": torch.rand(2, net.channels, net.image_size, net.image_size) * 2 - 1,
    }
    example["encoder"] = example["critic"]
    example["segmenter"] = (example["critic"], example["critic"].flip(0))
    for name, module in networks.items():
        module = module.to("cpu").eval()
        buffer = io.BytesIO()
        with quiet_torchscript(), torch.no_grad():
            traced = torch.jit.trace(module, example[name], check_trace=False)
            torch.jit.save(traced, buffer)
        atomic_write_bytes(folder / f"{name}.pt", buffer.getvalue())


def write_meta(folder: Path, meta: BundleMeta) -> None:
    atomic_write_json(folder / "model.json", meta.to_dict())


def load_bundle(folder: Path, device: torch.device | str = "cpu", upgrade: bool = False) -> Bundle:
    """The bundle's networks and model.json; `upgrade`: see read_meta."""
    folder = Path(folder)
    meta = read_meta(folder, upgrade)
    modules = {}
    for name in NETWORKS + (("segmenter",) if meta.segmenter else ()):
        path = folder / f"{name}.pt"
        if not path.is_file():
            raise BundleError(f"{path}: missing from the bundle")
        try:
            with quiet_torchscript():
                modules[name] = torch.jit.load(str(path), map_location=device).eval()
        except Exception as e:  # a damaged or foreign file: torch raises several kinds, some without a message
            reason = next(iter(str(e).strip().splitlines()), "")
            reason = reason if reason not in ("", "()") else type(e).__name__
            raise BundleError(f"{path}: not a loadable TorchScript file ({reason})") from None
    bundle = Bundle(folder, meta, **modules)
    _check_roles(bundle)
    return bundle


def _check_roles(bundle: Bundle) -> None:
    """Each file does its network's job on one example (a critic.pt that is really a generator,
    or networks of another size than model.json says, fail here, not in the middle of scoring)."""
    net, device = bundle.meta.network, next(bundle.generator.parameters()).device
    image = torch.zeros(1, net.channels, net.image_size, net.image_size, device=device)
    checks = {
        "generator": (
            lambda: bundle.generator(torch.zeros(1, net.latent, device=device)),
            lambda out: isinstance(out, torch.Tensor) and tuple(out.shape) == tuple(image.shape),
        ),
        "critic": (
            lambda: bundle.critic(image),
            lambda out: isinstance(out, tuple) and len(out) == 2 and out[0].shape == (1,),
        ),
        "encoder": (
            lambda: bundle.encoder(image),
            lambda out: isinstance(out, torch.Tensor) and tuple(out.shape) == (1, net.latent),
        ),
    }
    if bundle.segmenter is not None:
        checks["segmenter"] = (
            lambda: bundle.segmenter(image, image),
            lambda out: isinstance(out, torch.Tensor) and tuple(out.shape) == (1, *image.shape[2:]),
        )
    for name, (run, fits) in checks.items():
        try:
            with torch.no_grad():
                ok = fits(run())
        except Exception:  # a traced network given the wrong input raises whatever its first layer raises
            ok = False
        if not ok:
            raise BundleError(
                f"{bundle.path / (name + '.pt')}: does not work as this bundle's {name} "
                f"({net.channels} channels, {net.image_size} px, latent {net.latent})"
            )
