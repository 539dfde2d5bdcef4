"""`python -m anomaly_gan ...`, which is how torchrun starts it: `torchrun --nproc-per-node N -m
anomaly_gan train|detect ...`."""

from anomaly_gan.cli import app

app(prog_name="anomaly-gan")
