"""Each objective's default settings and length, by name: plain values, so that `train --help`
and TrainConfig show and check them without loading torch (the objectives themselves, in
train.objectives, take their defaults from here). `with_switches` applies the CLI's switches."""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields, replace


@dataclass(frozen=True)
class ObjectiveSettings:
    """Learning rates and the switches of the objectives (unused ones keep their neutral value)."""

    lr_g: float
    lr_d: float  # a different rate from lr_g is TTUR
    betas: tuple[float, float] = (0.5, 0.999)  # Adam's; RMSprop has none
    optimiser: str = "adam"  # adam | rmsprop
    n_critic: int = 1  # critic updates per generator update
    d_every: int = 1  # update the critic on every N-th generator step (alternating updates)
    smooth: float = 1.0  # gan: one-sided label smoothing, the real target (1 = off)
    clip: float = 0.0  # wgan-clip: critic weights clamped to [-clip, clip]
    gp_weight: float = 0.0  # wgan-gp: gradient-penalty weight
    gp_samples: int = 16  # wgan-gp: interpolates the penalty is estimated on per critic step
    gp_every: int = 1  # wgan-gp: the penalty on every N-th critic update only, weighted N times (lazy)

    def to_dict(self) -> dict:
        return asdict(self)


# Each switch's neutral value (the field defaults): what a run recorded before the switch existed used.
NEUTRAL_SWITCHES = {f.name: f.default for f in fields(ObjectiveSettings) if f.default is not MISSING}

# Generator updates of a default run: with the encoder, head and calibration, a Kinect class trains
# in under 10 minutes in bf16 on a 2-core CPU (benchmarks/train_speed.py).
DEFAULT_STEPS = {
    "gan": 1500,
    "lsgan": 1500,
    "wgan-clip": 700,
    "wgan-gp": 600,  # 4 critic steps, the last with the penalty's double backward: 0.35 s in bf16 on 2 cores
}
DEFAULT_SETTINGS = {
    "gan": ObjectiveSettings(2e-4, 2e-4, smooth=0.9),
    "lsgan": ObjectiveSettings(2e-4, 2e-4),
    "wgan-clip": ObjectiveSettings(5e-5, 5e-5, optimiser="rmsprop", n_critic=5, clip=0.01),
    # 4 critic updates, the penalty on the last (x4), rather than 5 each penalised: the GAN stage 30% shorter at
    # equal validation AUROC (docs/decisions.md, Training speed)
    "wgan-gp": ObjectiveSettings(1e-4, 3e-4, betas=(0.0, 0.9), n_critic=4, gp_weight=10.0, gp_samples=16, gp_every=4),
}
SMOOTHED = 0.9  # gan's real target with label smoothing on
# Which objectives each switch means something to (learning rates apply to all).
APPLIES = {
    "d_every": ("gan", "lsgan"),
    "smooth": ("gan",),
    "n_critic": ("wgan-clip", "wgan-gp"),
    "clip": ("wgan-clip",),
    "gp_weight": ("wgan-gp",),
    "gp_every": ("wgan-gp",),
}


def with_switches(objective: str, **switches: float | int | None) -> ObjectiveSettings:
    """The objective's defaults with the switches given (None = keep the default); ValueError for an
    unknown objective or a switch that means nothing to it."""
    if objective not in DEFAULT_SETTINGS:
        raise ValueError(f"unknown objective {objective!r}; choose from {', '.join(DEFAULT_SETTINGS)}")
    given = {k: v for k, v in switches.items() if v is not None}
    for name in given:
        if objective not in APPLIES.get(name, (objective,)):
            flag = "--smoothing" if name == "smooth" else "--" + name.replace("_", "-")
            raise ValueError(f"{flag} applies to {' and '.join(APPLIES[name])}, not {objective}")
    return replace(DEFAULT_SETTINGS[objective], **given)
